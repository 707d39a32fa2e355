"""The ingest stage's own consumer against the embedded broker: batches, commits, at-least-once."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streams.ingest_consumer import IngestConsumer
from streams.kafka_fixes import install_leave_group_fix

pytestmark = pytest.mark.e2e
install_leave_group_fix()  # as the worker does: a stopped member leaves, the next joins at once

TOPIC = "ingest-consumer-test"


async def _produce(bootstrap: str, n: int, start: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for i in range(start, start + n):
            await producer.send(TOPIC, str(i).encode(), key=str(i % 7).encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _consume(bootstrap: str, group: str, want: int, *, fail_first: bool = False,
                   timeout: float = 30.0) -> tuple[list[int], list[int]]:
    """Run an IngestConsumer until `want` values were handled; (values, batch sizes)."""
    seen: list[int] = []
    sizes: list[int] = []
    done = asyncio.Event()

    async def handle(topic: str, records: list) -> None:
        assert topic == TOPIC
        if fail_first and not sizes:
            sizes.append(0)
            raise RuntimeError("batch failed")
        sizes.append(len(records))
        seen.extend(int(r.value) for r in records)
        if len(seen) >= want:
            done.set()

    consumer = IngestConsumer(bootstrap, [TOPIC], group, handle, max_records=500, max_wait_s=0.2,
                              fetch_max_wait_ms=20, session_timeout_s=6)
    task = asyncio.create_task(consumer.run())
    try:
        waiter = asyncio.create_task(done.wait())
        finished, _ = await asyncio.wait({task, waiter}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        if task in finished:
            task.result()  # raises the handler's error
        assert waiter in finished, f"handled {len(seen)} of {want}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return seen, sizes


async def _committed(bootstrap: str, group: str) -> dict[int, int | None]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(TOPIC, p)) for p in (0, 1)}
    finally:
        await consumer.stop()


def test_batches_are_committed_and_a_restart_reads_only_what_is_new(kafka):
    kafka.create_topics({TOPIC: 2})
    asyncio.run(_produce(kafka.bootstrap, 3000))
    seen, sizes = asyncio.run(_consume(kafka.bootstrap, "g1", 3000))
    assert sorted(seen) == list(range(3000))
    assert max(sizes) > 1 and len(sizes) < 3000  # batches, not records one by one
    assert sum(v or 0 for v in asyncio.run(_committed(kafka.bootstrap, "g1")).values()) == 3000
    # the next member of the group starts where the first stopped
    asyncio.run(_produce(kafka.bootstrap, 10, start=3000))
    seen, _ = asyncio.run(_consume(kafka.bootstrap, "g1", 10))
    assert sorted(seen) == list(range(3000, 3010))


def test_a_failed_batch_is_not_committed(kafka):
    kafka.create_topics({TOPIC: 2})
    asyncio.run(_produce(kafka.bootstrap, 200))
    with pytest.raises(RuntimeError, match="batch failed"):
        asyncio.run(_consume(kafka.bootstrap, "g2", 200, fail_first=True))
    committed = asyncio.run(_committed(kafka.bootstrap, "g2"))
    # at most the partition whose batch did not fail moved: the failed records are read again
    seen, _ = asyncio.run(_consume(kafka.bootstrap, "g2", 200 - sum(v or 0 for v in committed.values())))
    assert len(seen) + sum(v or 0 for v in committed.values()) == 200
    assert sum(v or 0 for v in committed.values()) < 200
