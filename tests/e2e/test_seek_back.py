"""`install_seek_back_fix`: Faust's seek back to the committed offsets rewinds a partition that was
never committed, on the embedded broker.

Faust takes records from aiokafka, drops those it cannot deliver when a rebalance begins, and
seeks back to the committed offsets to read them again; aiokafka's `seek_to_committed` leaves a
partition without a commit where it was, past the dropped records (a transfer lost: the shard
test's parked survivor). Here a real aiokafka consumer in a group reads three partitions, one
committed, one committed at 0, one never, and a changelog partition; the patched method of Faust's
consumer thread is called on it the way `Consumer.perform_seek` calls it.
"""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from streams.kafka.patches import install_seek_back_fix

pytestmark = pytest.mark.e2e


class ConsumerThread(SimpleNamespace):
    """What the patched `AIOKafkaConsumerThread.seek_to_committed` uses of its thread: the
    consumer, the app's settings and tables, and `call_thread` (here: in the same loop)."""

    def _ensure_consumer(self):
        return self.consumer

    async def call_thread(self, fun, *args):
        return await fun(*args)


async def _scenario(kafka, name: str, seek_to_committed) -> dict[int, int]:
    """Positions after `seek_to_committed` (partition of the topic `name`; -1: the changelog)."""
    bootstrap, changelog = kafka.bootstrap, f"{name}-changelog"
    await kafka.acreate_topics({name: 3, changelog: 1})
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    for partition in range(3):
        for i in range(5):
            await producer.send_and_wait(name, b"%d" % i, partition=partition)
    for i in range(5):
        await producer.send_and_wait(changelog, b"%d" % i, partition=0)
    await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=f"g-{name}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    tps = [TopicPartition(name, p) for p in range(3)] + [TopicPartition(changelog, 0)]
    consumer.assign(tps)
    await consumer.commit({tps[0]: OffsetAndMetadata(2, ""), tps[1]: OffsetAndMetadata(0, "")})
    taken = 0
    while taken < 3 + 5 + 5 + 5:  # all fetched (partition 0 from its commit at 2): the positions
        # are past them, as after Faust dropped them
        taken += sum(len(r) for r in (await consumer.getmany(timeout_ms=2000)).values())
    thread = ConsumerThread(consumer=consumer, app=SimpleNamespace(
        conf=SimpleNamespace(consumer_auto_offset_reset="earliest"),
        tables=SimpleNamespace(changelog_topics={changelog})))
    try:
        committed = await seek_to_committed(thread)
        assert committed[tps[0]] == 2 and not committed[tps[1]] and committed[tps[2]] is None
        return {tp.partition if tp.topic == name else -1: await consumer.position(tp)
                for tp in tps}
    finally:
        await consumer.stop()


def test_a_partition_never_committed_is_read_again_from_its_beginning(kafka, monkeypatch):
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = getattr(AIOKafkaConsumerThread.seek_to_committed, "__wrapped__",
                       AIOKafkaConsumerThread.seek_to_committed)
    monkeypatch.setattr(AIOKafkaConsumerThread, "seek_to_committed", original)  # restored after
    assert install_seek_back_fix() is True and install_seek_back_fix() is False
    positions = asyncio.run(_scenario(kafka, "fixed", AIOKafkaConsumerThread.seek_to_committed))
    # committed at 2: back to 2 (aiokafka's own seek); at 0 and never: back to the beginning;
    # the changelog partition stays where the table's reading left it
    assert positions == {0: 2, 1: 0, 2: 0, -1: 5}


def test_without_the_fix_the_never_committed_partitions_stay_past_what_was_fetched(kafka):
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = getattr(AIOKafkaConsumerThread.seek_to_committed, "__wrapped__",
                       AIOKafkaConsumerThread.seek_to_committed)
    # what Faust does alone: only the partition committed above 0 goes back
    assert asyncio.run(_scenario(kafka, "unfixed", original)) == {0: 2, 1: 5, 2: 5, -1: 5}
