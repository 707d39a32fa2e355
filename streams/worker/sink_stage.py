"""The sink stage: ClickHouse written from the sink topic, off the trigger path.

The journey (and ingest, for its dead letters) sends each batch's ClickHouse rows to the sink topic
(`parcours.sink`, one partition, streams/worker/sink_blocks.py) with its other outputs, and
acknowledges the batch once they and its changelog are flushed: a trigger never waits for an
insert. This stage reads that topic with its own consumer group (`<app id>-sink`) and:

- builds the rows (`streams.worker.outputs.rows_of`, the function replay writes with) and buffers
  them per table in the ClickHouse sink (sinks/writer.py);
- inserts them when `max_rows` are buffered or the oldest was read `max_age_s` ago: large inserts,
  each chunk with a deduplication token, a chunk that failed re-sent unchanged (same token);
- commits the topic's offset only after ClickHouse acknowledged every row before it, so a crash
  re-reads (and ClickHouse drops or the tables' ReplacingMergeTree keys collapse) what was not
  confirmed, and nothing is lost;
- applies an erasure record as a barrier: every row before it is written, then the forgotten
  profile's rows are deleted, then an `erased` event on the identity topic confirms it (keyed by
  the request id, no personal data).

While ClickHouse refuses writes, the stage keeps what it has read, pauses its partition and tries
again with backoff (1 s doubling to 30 s), forever: the journey keeps sending triggers, the backlog
waits in Kafka (give the sink topic a retention longer than the outages to ride out), and
parcours_sink_lag_records / parcours_sink_lag_seconds / parcours_sink_failing say so (alert
ParcoursSinkLagging). A row the sink refuses as malformed (a bug: only parcours writes the topic)
goes to the dead-letter topic with its reason, not into an endless retry.

The stage runs inside the worker process (with chDB it must: only one process may open a chDB
directory), as a task of the Faust app (streams/worker/agents.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable

import orjson
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from sinks.writer import SinkError
from streams.config import Topics
from streams.kafka.clients import KafkaClients
from streams.worker import metrics, sink_blocks
from streams.worker.outputs import TABLE_OF, rows_of

log = logging.getLogger("parcours.sink")
LAG_REPORT_SECONDS = 1.0  # how often the lag gauges are set, also in the middle of a long write


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: SinkStage):
        self.owner = owner

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.owner.lock:  # the step in progress finishes first
            await self.owner.give_away()

    async def on_partitions_assigned(self, assigned) -> None:
        for tp in assigned:  # where the group stands: the lag counts from there
            self.owner.committed[tp] = await self.owner.consumer.committed(tp) or 0
        log.info("sink stage assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


class SinkStage:
    """Sink topic -> ClickHouse, committing only what ClickHouse acknowledged (see module doc).
    `sink`: a `ClickHouseSink`; `producer`: a `BatchProducer` (dead letters, erasure confirmations).
    `erase(client, profile_ids, identifiers)` deletes a profile's rows (sinks.erasure.erase)."""

    def __init__(self, clients: KafkaClients, topics: Topics, group_id: str, sink, producer, *,
                 max_rows: int = 50_000, max_age_s: float = 1.0, max_wait_s: float = 0.2,
                 session_timeout_s: float = 10.0, erase: Callable | None = None,
                 retry_delay: float = 1.0, max_retry_delay: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        self.clients = clients
        self.topics = topics
        self.group_id = group_id
        self.sink = sink
        self.producer = producer
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_wait_ms = max(1, int(max_wait_s * 1000))
        self.session_ms = int(session_timeout_s * 1000)
        self.erase = erase
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.clock = clock
        self.encoder = None  # dead letters: JSON, or Avro (output_schemas.OutputEncoder)
        self.lock = asyncio.Lock()
        self.consumer = None  # created in the worker's event loop
        self.backlog: deque = deque()  # records read, not applied yet (held while ClickHouse fails)
        self.applied: dict[TopicPartition, int] = {}  # next offset after the last applied record
        self.committed: dict[TopicPartition, int] = {}
        self.buffered = 0  # rows handed to the sink since the last successful flush
        self.oldest: float | None = None  # clock() when the oldest of them was read
        self.first_unwritten_ms: int | None = None  # timestamp of the oldest record not committed
        self.delay = retry_delay
        self.next_attempt = 0.0  # after a failure: no ClickHouse call before this clock()
        self.paused = False
        self.written: dict[str, int] = {}  # rows written per table (also in parcours_sink_rows)
        self._pending_rows: dict[str, int] = {}
        self._dead_letters: list[tuple] = []  # dead-letter records to send with the next flush

    # ---- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Consume until cancelled."""
        self.consumer = self.clients.consumer(
            group_id=self.group_id, client_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=self.session_ms,
            heartbeat_interval_ms=max(100, self.session_ms // 6),
            rebalance_timeout_ms=self.session_ms)
        await self.consumer.start()
        self.consumer.subscribe([self.topics.sink], listener=_Listener(self))
        reporter = asyncio.create_task(self.report_every(LAG_REPORT_SECONDS))
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=self.max_wait_ms,
                                                      max_records=2000)
                async with self.lock:
                    for records in batches.values():
                        self.backlog.extend(records)
                    await self.step()
                self.report_lag()
        finally:
            reporter.cancel()
            try:
                async with self.lock:
                    if not self.backlog and await self.flush():
                        await self.commit()
            except Exception as exc:  # noqa: BLE001 - stopping: the next run re-reads the rest
                log.warning("final sink flush failed: %s", exc)
            await self.consumer.stop()

    async def step(self) -> None:
        """Apply what was read, insert what is due, commit what ClickHouse acknowledged; on a
        ClickHouse failure keep everything (paused) for the next try."""
        if self.clock() < self.next_attempt:
            return
        while self.backlog:
            record = self.backlog[0]
            if self.first_unwritten_ms is None:
                self.first_unwritten_ms = record.timestamp
            block = self._decode(record)
            if block is not None and block["kind"] == sink_blocks.ERASE:
                if not (await self.flush() and await self._erase(block)):
                    return self._stall()
            elif block is not None:
                try:
                    await asyncio.to_thread(self._buffer, block, record)
                except SinkError as exc:  # the sink's buffer is full: write it first
                    log.warning("sink stage: %s", exc)
                    return self._stall()
            self.applied[TopicPartition(record.topic, record.partition)] = record.offset + 1
            self.backlog.popleft()
            if block is not None and block["kind"] == sink_blocks.ERASE:
                await self.commit()
            elif self.buffered >= self.max_rows:
                if not await self.flush():
                    return self._stall()
                await self.commit()
        due = self.oldest is not None and self.clock() - self.oldest >= self.max_age_s
        uncommitted = any(self.committed.get(tp) != off for tp, off in self.applied.items())
        if due or (self.buffered == 0 and uncommitted):
            if not await self.flush():
                return self._stall()
            await self.commit()
        self._resume()

    # ---- ClickHouse ------------------------------------------------------------------------

    def _decode(self, record) -> dict | None:
        try:
            block = sink_blocks.decode(record.value)
            if block["kind"] != sink_blocks.ERASE and block["kind"] not in TABLE_OF:
                raise ValueError(f"unknown kind {block['kind']!r}")
            return block
        except ValueError as exc:
            log.error("unreadable sink record %s[%s]@%s dropped: %s", record.topic,
                      record.partition, record.offset, exc)
            self._dead_letters.append(self._dead_letter(record, "sink_record", str(exc),
                                                        record.value))
            return None

    def _buffer(self, block: dict, record) -> None:
        """Rows of one sink record into the sink (in a thread: conversion is CPU, and the event
        loop must keep serving the journey)."""
        kind = block["kind"]
        table, rows = TABLE_OF[kind], rows_of(kind, block["items"], block["now"])
        try:
            self.sink.write(table, rows)
        except ValueError:  # a malformed row: find it, write the others
            good = []
            for row in rows:
                try:
                    self.sink.write(table, [row])
                    good.append(row)
                except ValueError as exc:
                    metrics.SINK_ERRORS.labels(table).inc()
                    log.error("row refused by %s, dead-lettered: %s", table, exc)
                    self._dead_letters.append(self._dead_letter(record, "sink_row", str(exc),
                                                                orjson.dumps(row, default=str)))
            rows = good
        self.buffered += len(rows)
        self._pending_rows[table] = self._pending_rows.get(table, 0) + len(rows)
        if self.oldest is None:
            self.oldest = self.clock()

    async def flush(self) -> bool:
        """Write every buffered row (and the dead letters found); False when ClickHouse
        refused."""
        try:
            if self._dead_letters:
                dead, self._dead_letters = self._dead_letters, []
                try:
                    await self.producer.send_all(dead)
                except Exception:
                    self._dead_letters = dead + self._dead_letters
                    raise
            if self.buffered:
                await asyncio.to_thread(self.sink.flush)
        except (SinkError, KafkaError) as exc:
            metrics.SINK_STALLS.inc()
            metrics.SINK_FAILING.set(1)
            log.error("sink stage: write failed, %d rows held, %d records behind, retrying in "
                      "%.0f s: %s", self.buffered, len(self.backlog), self.delay, exc)
            return False
        for table, n in self._pending_rows.items():
            metrics.SINK_ROWS.labels(table).inc(n)
            metrics.SINK_PENDING.labels(table).set(0)
            self.written[table] = self.written.get(table, 0) + n
        self._pending_rows.clear()
        if self.delay != self.retry_delay:
            log.warning("sink stage: ClickHouse writes again")
        self.buffered, self.oldest, self.delay = 0, None, self.retry_delay
        metrics.SINK_FAILING.set(0)
        return True

    async def _erase(self, block: dict) -> bool:
        """Delete a forgotten profile's rows, then confirm on the identity topic."""
        if self.erase is not None and block["survivor"]:
            try:
                matched = await asyncio.to_thread(self.erase, self.sink.client,
                                                  [block["survivor"]], block["identifiers"])
            except Exception as exc:  # noqa: BLE001 - ClickHouse refused: held, retried
                metrics.SINK_STALLS.inc()
                metrics.SINK_FAILING.set(1)
                log.error("sink stage: erasure of %s failed, retrying in %.0f s: %s",
                          block["survivor"], self.delay, exc)
                return False
            log.warning("erased profile %s from ClickHouse: %s", block["survivor"], matched)
        else:
            matched = {}
        request_id = block.get("request_id") or ""
        confirmation = {"kind": "erased", "event_id": request_id, "at": int(time.time() * 1000),
                        "matched": matched}
        await self.producer.send_all([(self.topics.identity, request_id.encode(),
                                       orjson.dumps(confirmation))])
        return True

    def _stall(self) -> None:
        self.next_attempt = self.clock() + self.delay
        self.delay = min(self.delay * 2, self.max_retry_delay)
        if not self.paused and self.consumer is not None:
            self.consumer.pause(*self.consumer.assignment())  # keep polling: the group stays
            self.paused = True

    def _resume(self) -> None:
        if self.paused and self.consumer is not None:
            self.consumer.resume(*self.consumer.assignment())
            self.paused = False

    # ---- offsets ---------------------------------------------------------------------------

    async def commit(self) -> None:
        """Commit the offsets of every record whose rows ClickHouse acknowledged."""
        offsets = {tp: off for tp, off in self.applied.items() if self.committed.get(tp) != off}
        if offsets and self.consumer is not None:
            try:
                await self.consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance: the next owner re-reads (idempotent)
                log.info("sink commit deferred: %s", exc)
                return
            self.committed.update(offsets)
        self.first_unwritten_ms = self.backlog[0].timestamp if self.backlog else None

    async def give_away(self) -> None:
        """Partitions revoked: write and commit what can be, forget the rest (the next owner
        re-reads it from the last commit)."""
        if self.clock() >= self.next_attempt and not self.backlog and await self.flush():
            await self.commit()
        self.backlog.clear()
        self.applied.clear()
        self.committed.clear()
        self.first_unwritten_ms = None
        self.paused = False

    async def report_every(self, seconds: float) -> None:
        """Set the lag gauges every `seconds`, whatever the loop is doing: one flush to a slow
        ClickHouse can take longer than the alert's window, and lag reported only between steps
        would stay at its value from before the flush all that time."""
        while True:
            await asyncio.sleep(seconds)
            self.report_lag()

    def report_lag(self) -> None:
        """The lag gauges: records behind (committed offset against the partitions' high-water
        marks, as last fetched) and the age of the oldest record not committed (grows with the
        wall clock while a write is stuck), and the rows buffered per table."""
        if self.consumer is None:
            return
        behind = 0
        for tp in self.consumer.assignment():
            highwater = self.consumer.highwater(tp)
            position = self.committed.get(tp)
            if highwater is not None and position is not None:
                behind += max(0, highwater - position)
        metrics.SINK_LAG.set(behind)
        oldest = self.first_unwritten_ms
        metrics.SINK_LAG_SECONDS.set(0 if oldest is None
                                     else max(0.0, time.time() - oldest / 1000))
        # a copy: `_buffer` (in a thread) may add a table meanwhile
        for table, n in list(self._pending_rows.items()):
            metrics.SINK_PENDING.labels(table).set(n)

    # ---- dead letters ----------------------------------------------------------------------

    def _dead_letter(self, record, error: str, reason: str, original: bytes) -> tuple:
        dead = {"received_at": int(time.time() * 1000), "error": error, "reason": reason,
                "topic": record.topic, "partition": record.partition, "offset": record.offset,
                "original": original.decode("utf-8", "replace")}
        metrics.DEAD_LETTERS.labels(error).inc()
        if self.encoder is not None and self.encoder.avro:
            return (self.topics.dead_letter, None, self.encoder.encode(
                "dead_letters", self.topics.dead_letter, {**dead, "original": original}))
        return (self.topics.dead_letter, None, orjson.dumps(dead))
