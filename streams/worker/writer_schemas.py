"""The ingest shell's writer schemas: a batch's Confluent schema ids, resolved from the registry.

Before a batch of raw touchpoints is decoded, `WriterSchemas.for_batch` collects the distinct ids
of its 0x00-framed records, asks the registry (`schemas.confluent.RegistryClient`) for those the
cache lacks, and hands decode the plain mapping of resolved writers
(`schemas.confluent.WriterCache.writers`). The decode core never waits for anything.

What the registry says decides a record's fate, what it cannot say decides nothing:
- a writer schema that resolves into the touchpoint contract: its records are read with it;
- an incompatible one, or an id the registry does not know (HTTP 404, error_code 40403): its
  records are dead letters of error "format" with that reason (an unknown id is asked again
  after a minute, `RegistrySettings.unknown_ttl_s`: it may have been registered since);
- no answer (connection refused, timeout, HTTP 5xx, 429, a proxy's page, or a refusal such as a
  401): the batch waits, retried with backoff (0.5 s doubling up to 30 s), one warning per outage
  naming the registry's URL (never a record), `parcours_schema_registry_failing` at 1 and
  `parcours_schema_registry_errors` counting the attempts. The ingest consumer commits a batch's
  offsets only once the shell returns, so a worker killed meanwhile loses nothing: its successor
  reads the batch again. (A wait longer than the consumer's max poll interval, 5 minutes, makes
  it leave its group; the batch is then read again by whoever gets the partition, and the
  pipeline applies each input record once.)
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable, Iterable, Mapping

from schemas.confluent import RegistryError, SchemaNotFound
from schemas.confluent.writers import Writer, WriterCache, framed_ids, resolve, unknown
from streams.worker import metrics

log = logging.getLogger("parcours.schema_registry")

RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 30.0
FETCH_AT_ONCE = 8  # registry requests in flight: a batch of hostile random ids is not 2,000 trips


class WriterSchemas:
    """Writer schemas by id for the ingest shell: `client` a `RegistryClient` (or any object with
    `async schema(id) -> answer` and a `url`), `cache` a `WriterCache`."""

    def __init__(self, client, cache: WriterCache, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 retry_delay: float = RETRY_DELAY_S, max_retry_delay: float = MAX_RETRY_DELAY_S):
        self.client = client
        self.cache = cache
        self.clock = clock
        self.sleep = sleep
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.failing_since: float | None = None  # clock() when the current outage began

    async def stop(self) -> None:
        """Close the registry client's connections (the worker stops)."""
        await self.client.close()

    async def for_batch(self, values: Iterable) -> Mapping[int, Writer]:
        """The writers of every Confluent-framed value among `values`, fetching the missing ones
        (waiting as long as the registry is unavailable)."""
        missing = self.cache.missing(framed_ids(values), self.clock())
        for start in range(0, len(missing), FETCH_AT_ONCE):
            await asyncio.gather(*(self._fetch(sid)
                                   for sid in missing[start:start + FETCH_AT_ONCE]))
        return self.cache.writers

    async def _fetch(self, sid: int) -> None:
        delay = self.retry_delay
        while True:
            try:
                answer = await self.client.schema(sid)
            except SchemaNotFound as exc:
                self.cache.add_unknown(sid, unknown(sid, _detail(exc)), self.clock())
                metrics.SCHEMA_REGISTRY_WRITERS.labels("unknown").inc()
                log.warning("schema id %d is not in the schema registry at %s: its records are "
                            "dead-lettered (asked again after %.0f s)", sid, self.client.url,
                            self.cache.unknown_ttl_s)
                break
            except RegistryError as exc:
                self._failed(exc)
                await self.sleep(delay)
                delay = min(delay * 2, self.max_retry_delay)
                continue
            writer = resolve(sid, answer)
            self.cache.add(sid, writer)
            metrics.SCHEMA_REGISTRY_WRITERS.labels("refused" if writer.refusal else "resolved"
                                                   ).inc()
            if writer.refusal:
                log.warning("records with %s are dead-lettered: %s", writer.name, writer.refusal)
            break
        self._back()

    def _failed(self, exc: RegistryError) -> None:
        metrics.SCHEMA_REGISTRY_ERRORS.labels("schema").inc()
        if self.failing_since is None:
            self.failing_since = self.clock()
            metrics.SCHEMA_REGISTRY_FAILING.set(1)
            log.warning("schema registry at %s is unavailable: ingest holds its batch and retries "
                        "(nothing is dead-lettered for it): %s", self.client.url, exc)

    def _back(self) -> None:
        if self.failing_since is not None:
            log.warning("schema registry at %s answers again after %.1f s; ingest resumes",
                        self.client.url, self.clock() - self.failing_since)
            self.failing_since = None
            metrics.SCHEMA_REGISTRY_FAILING.set(0)


def _detail(exc: SchemaNotFound) -> str:
    return f"HTTP {exc.status}, error_code {exc.error_code}"
