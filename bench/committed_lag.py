"""A consumer group's lag seen from outside its process: what bench/sink_lag.py checks the sink
stage's own gauges against."""
from __future__ import annotations

import time


class CommittedLag:
    """The sink stage's lag seen from outside the worker: the sink topic's end minus the sink
    group's committed offset, and the age of the first record not committed (its timestamp): the
    worker's gauges checked from outside."""

    def __init__(self, bootstrap: str, group: str, topic: str):
        from aiokafka import TopicPartition

        from streams.kafka.clients import KafkaClients

        self.bootstrap = bootstrap
        self.tp = TopicPartition(topic, 0)
        clients = KafkaClients.at(bootstrap)
        self.group = clients.consumer(group_id=group, enable_auto_commit=False)  # never joins
        self.reader = clients.consumer(group_id=None, enable_auto_commit=False)

    async def start(self) -> None:
        await self.group.start()
        await self.reader.start()
        self.reader.assign([self.tp])

    async def stop(self) -> None:
        await self.group.stop()
        await self.reader.stop()

    async def sample(self) -> tuple[float, float]:
        """(records, seconds) not committed now."""
        from streams.kafka.patches import true_end_offsets

        end = (await true_end_offsets(self.bootstrap, [self.tp]))[self.tp]
        committed = await self.group.committed(self.tp) or 0
        if committed >= end:
            return 0.0, 0.0
        self.reader.seek(self.tp, committed)
        records = (await self.reader.getmany(self.tp, timeout_ms=1000, max_records=1)).get(self.tp)
        age = max(0.0, time.time() - records[0].timestamp / 1000) if records else 0.0
        return float(end - committed), age
