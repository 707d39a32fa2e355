"""Has a partition grown since a given offset? One group-less consumer's ListOffsets(latest).

The sequencer asks it about input partitions reported idle: a partition whose log end moved past
the offset it was idle at has records that its ingest worker has not forwarded yet (that worker
may be down, rebalancing, or slower than the workers forwarding the other partitions), so it
must hold the frontier again before newer records of other partitions are ordered.

`LogEnds.grown(topic, {partition: offset})` answers with the partitions whose ListOffsets(latest)
answer is above the offset. A correct broker answers the log end offset. Tansu 0.6.0 answers the
base offset of the last record batch + 1 (streams/kafka/patches.py): at or below the end, and
above any end offset a report gave once a batch was appended after it. So "above the offset
reported" is exact on both, and no confirming fetch is needed (unlike `true_end_offsets`, which
must know the end itself).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from streams.kafka.clients import KafkaClients

__all__ = ["LogEnds"]

log = logging.getLogger("parcours.kafka")


class LogEnds:
    def __init__(self, clients: KafkaClients, *, timeout: float = 10.0):
        self.clients = clients
        self.timeout = timeout
        self._consumer = None
        self._lock = asyncio.Lock()

    async def _started(self):
        if self._consumer is None:
            consumer = self.clients.consumer(
                client_id="parcours-log-ends", group_id=None, enable_auto_commit=False,
                request_timeout_ms=int(self.timeout * 1000))
            await asyncio.wait_for(consumer.start(), self.timeout)
            self._consumer = consumer
        return self._consumer

    async def grown(self, topic: str, offsets: Mapping[int, int]) -> set[int]:
        """The partitions of `topic` with records at or after their offset in `offsets`."""
        from aiokafka import TopicPartition

        if not offsets:
            return set()
        async with self._lock:
            consumer = await self._started()
            tps = [TopicPartition(topic, p) for p in sorted(offsets)]
            answers = await asyncio.wait_for(consumer.end_offsets(tps), self.timeout)
        return {tp.partition for tp, end in answers.items() if int(end) > offsets[tp.partition]}

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await asyncio.sleep(0)  # see patches._stop: a group-less consumer's first turn
            await consumer.stop()
