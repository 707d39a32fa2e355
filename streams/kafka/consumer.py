"""The ingest stage's own Kafka consumer: batches of raw records from a plain aiokafka group
consumer (built by streams/kafka/clients.py, with the connection's security options).

Ingest is stateless (decode, validate, normalise, forward to the stitch topic), so it needs nothing
Faust's stream machinery gives, and that machinery costs ~100 us per record (measured by `make
bench`: a Faust agent that only counts peaks at ~10k records/s on this machine, a plain aiokafka
consumer at ~290k/s; Faust hands every record to the agent through two tasks and an
`asyncio.wait`). Here each `getmany` batch goes to the shell in one call.

Delivery is at-least-once, as with Faust: a batch's offsets are committed only after its stitch
records and dead letters were acknowledged by the broker (and its dead-letter rows written), at most
once per `commit_interval` and always before a partition is given away in a rebalance (the listener
waits for the batch in progress). Consumer group: `<app id>-ingest`, separate from Faust's own group
(which carries Faust's assignor protocol and the stateful journey agent's partitions).

A record batch that cannot be read (its codec's library missing, corrupt) arrives as one record at
the batch's last offset whose value is an `UnreadableBatch` (streams/kafka/unreadable_batches.py):
the handler dead-letters it like any bad record, and the records after it keep flowing.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from streams.kafka import unreadable_batches
from streams.kafka.clients import KafkaClients

log = logging.getLogger("parcours.ingest")

Handler = Callable[[str, list], Awaitable[None]]  # (topic, records of that topic) -> done


class _Listener(ConsumerRebalanceListener):
    def __init__(self, owner: IngestConsumer):
        self.owner = owner

    async def on_partitions_revoked(self, revoked) -> None:
        async with self.owner.lock:  # the batch in progress finishes first
            try:
                await self.owner.commit()
            finally:
                self.owner.forget(revoked)

    async def on_partitions_assigned(self, assigned) -> None:
        # an assigned partition starts at the group's committed offset: nothing of ours is left to
        # commit for it (an older offset would move the group back)
        async with self.owner.lock:
            self.owner.forget(assigned)
        log.info("ingest assigned %s", sorted((tp.topic, tp.partition) for tp in assigned))


class IngestConsumer:
    """Consume `topics` in group `group_id`; hand each fetched batch to `handle`, per topic.
    `connection`: a `KafkaClients` (or the brokers alone); `client_options` go to aiokafka."""

    def __init__(self, connection: KafkaClients | str, topics: list[str], group_id: str,
                 handle: Handler, *, max_records: int = 2000, max_wait_s: float = 0.5,
                 fetch_max_wait_ms: int = 0, session_timeout_s: float = 10.0,
                 commit_interval: float = 1.0, client_options: dict | None = None,
                 on_forget: Callable[[list[tuple[str, int]]], None] | None = None):
        self.topics = topics
        self.on_forget = on_forget  # told of partitions given away or assigned afresh
        self.handle = handle
        self.max_records = max_records
        self.max_wait_ms = max(1, int(max_wait_s * 1000))
        self.commit_interval = commit_interval
        self.lock = asyncio.Lock()
        self.processed: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._committed: dict[TopicPartition, int] = {}
        self._last_commit = 0.0
        session_ms = int(session_timeout_s * 1000)
        self.clients = KafkaClients.at(connection)
        self._options = dict(
            group_id=group_id, client_id=group_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            session_timeout_ms=session_ms, heartbeat_interval_ms=max(100, session_ms // 6),
            rebalance_timeout_ms=session_ms, metadata_max_age_ms=30_000, **(client_options or {}))
        if fetch_max_wait_ms:  # 0: aiokafka's own (500 ms)
            self._options["fetch_max_wait_ms"] = fetch_max_wait_ms
        self.consumer: AIOKafkaConsumer | None = None  # created in the worker's event loop
        # process-wide: Faust's consumer then names what it cannot read
        unreadable_batches.install()

    def assignment(self) -> set[TopicPartition]:
        return self.consumer.assignment() if self.consumer is not None else set()

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.consumer.highwater(tp) if self.consumer is not None else None

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this consumer will hand over (the group's committed
        offset until the first batch); waits up to a second while the consumer looks it up."""
        return await asyncio.wait_for(self.consumer.position(tp), 1.0)

    def forget(self, partitions) -> None:
        """Drop the offsets noted for these partitions (given away, or assigned afresh)."""
        partitions = list(partitions)
        for tp in partitions:
            self.processed.pop(tp, None)
            self._committed.pop(tp, None)
        if self.on_forget is not None:
            self.on_forget([(tp.topic, tp.partition) for tp in partitions])

    async def commit(self) -> None:
        """Commit what has been fully processed (and not committed yet)."""
        assigned = self.consumer.assignment()
        offsets = {tp: off for tp, off in self.processed.items()
                   if tp in assigned and self._committed.get(tp) != off}
        if offsets:
            await self.consumer.commit(offsets)
            self._committed.update(offsets)
        self._last_commit = time.monotonic()

    async def run(self) -> None:
        """Consume until cancelled; commit what was processed on the way out."""
        self.consumer = self.clients.consumer(**self._options)
        await self.consumer.start()
        self.consumer.subscribe(self.topics, listener=_Listener(self))
        try:
            while True:
                batches = await unreadable_batches.getmany_readable(
                    self.consumer, timeout_ms=self.max_wait_ms, max_records=self.max_records)
                async with self.lock:
                    if batches:
                        await self._process(batches)
                    if time.monotonic() - self._last_commit >= self.commit_interval:
                        try:
                            await self.commit()
                        except KafkaError as exc:  # a rebalance: the listener commits
                            log.info("ingest commit deferred: %s", exc)
                            self._last_commit = time.monotonic()
        finally:
            try:
                async with self.lock:
                    await self.commit()
            except Exception as exc:  # stopping: the next owner re-reads at most one interval
                log.warning("final ingest commit failed: %s", exc)
            await self.consumer.stop()

    async def _process(self, batches: dict) -> None:
        by_topic: dict[str, list] = {}
        for tp, records in batches.items():
            by_topic.setdefault(tp.topic, []).extend(records)
        for topic, records in by_topic.items():
            await self.handle(topic, records)
        for tp, records in batches.items():
            self.processed[tp] = records[-1].offset + 1
