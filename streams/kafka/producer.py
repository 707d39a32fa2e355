"""Send a batch's output records with aiokafka's batch API.

A Faust `send` per record costs a future, a task and a buffer hop per record (measured: ~4k
events/s for the journey stage when every output and changelog write went that way). Here a
batch's records are grouped per topic-partition, appended to producer batches and sent with one
`send_batch` per full batch; `send_all` returns when the broker acknowledged all of them, so the
caller can acknowledge its input afterwards (at-least-once). Order is kept within a partition. A
record may name its partition (a fourth element): the journey's items go to their shard's.
`on_acked`, when set, is called after every acknowledged `send_all` with the offset of the last
record acknowledged per (topic, partition) (the worker's RocksDB tables record how far their
changelogs are written: streams/worker/tables.py).
The aiokafka producer is built by streams/kafka/clients.py, with the connection's security options.
"""
from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2

from streams.kafka.clients import KafkaClients

Record = tuple  # (topic, key: bytes | None, value: bytes | None[, partition: int | None])


@functools.lru_cache(maxsize=1 << 16)
def _hash(key: bytes) -> int:
    """aiokafka's murmur2 is pure Python (~7 us a key); the keys (profile ids, conversion ids)
    repeat from batch to batch, so the recent ones are remembered."""
    return murmur2(key) & 0x7FFFFFFF


def partition_for(key: bytes | None, partitions: list[int], counter) -> int:
    """Kafka's default partitioner: murmur2 of the key; round robin for keyless records."""
    if len(partitions) == 1:
        return partitions[0]
    if key is None:
        return partitions[next(counter) % len(partitions)]
    return partitions[_hash(key) % len(partitions)]


class BatchProducer:
    """`connection`: a `KafkaClients` (or the brokers alone); `client_options` go to aiokafka."""

    def __init__(self, connection: KafkaClients | str, *, client_id: str = "parcours",
                 max_batch_bytes: int = 512 * 1024, acks: int | str = "all",
                 client_options: dict | None = None):
        self.clients = KafkaClients.at(connection)
        self._options = dict(client_id=client_id, max_batch_size=max_batch_bytes, acks=acks,
                             max_request_size=2 * max_batch_bytes, **(client_options or {}))
        self._producer: AIOKafkaProducer | None = None  # created in the worker's event loop
        self._partitions: dict[str, list[int]] = {}
        self._round_robin = itertools.count()
        self._started = False
        self._lock: asyncio.Lock | None = None
        # called with {(topic, partition): last offset acknowledged} after each send_all
        self.on_acked: Callable[[dict[tuple[str, int], int]], None] | None = None

    async def start(self) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._started:
                self._producer = self.clients.producer(**self._options)
                await self._producer.start()
                self._started = True

    async def stop(self) -> None:
        if self._started:
            self._started = False
            await self._producer.stop()

    async def _partitions_of(self, topic: str) -> list[int]:
        parts = self._partitions.get(topic)
        if parts is None:
            found = await self._producer.partitions_for(topic)
            parts = self._partitions[topic] = sorted(found)
        return parts

    async def partition_count(self, topic: str) -> int:
        """Number of partitions of `topic` (from the broker's metadata)."""
        if not self._started:
            await self.start()
        return len(await self._partitions_of(topic))

    async def send_all(self, records: Iterable[Record]) -> int:
        """Send every record; wait for the broker's acknowledgement of all of them."""
        if not self._started:
            await self.start()
        grouped: dict[tuple[str, int], list] = {}
        for record in records:
            topic, key, value = record[0], record[1], record[2]
            if len(record) > 3 and record[3] is not None:  # an explicit partition
                partition = record[3]
            else:
                parts = self._partitions.get(topic) or await self._partitions_of(topic)
                partition = partition_for(key, parts, self._round_robin)
            grouped.setdefault((topic, partition), []).append((key, value))
        futures = []
        sizes = []  # records behind each future (a batch's future gives its base offset)
        count = 0
        producer = self._producer
        for (topic, partition), items in grouped.items():
            batch = producer.create_batch()
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    if batch.record_count():
                        sizes.append(batch.record_count())
                        futures.append(await producer.send_batch(batch, topic, partition=partition))
                        batch = producer.create_batch()
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        # larger than a whole batch: sent alone (up to max_request_size)
                        futures.append(await producer.send(topic, value, key=key,
                                                           partition=partition))
                        sizes.append(1)
            if batch.record_count():
                sizes.append(batch.record_count())
                futures.append(await producer.send_batch(batch, topic, partition=partition))
            count += len(items)
        if futures:
            acks = await asyncio.gather(*futures)
            if self.on_acked is not None:
                last: dict[tuple[str, int], int] = {}
                for meta, size in zip(acks, sizes):
                    key = (meta.topic, meta.partition)
                    last[key] = max(last.get(key, -1), meta.offset + size - 1)
                self.on_acked(last)
        return count
