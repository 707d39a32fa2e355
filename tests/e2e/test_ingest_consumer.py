"""The ingest stage's own consumer against the embedded broker: batches, commits, at-least-once."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from streams.kafka.consumer import IngestConsumer
from streams.kafka.patches import install_leave_group_fix

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


async def _committed(bootstrap: str, group: str, topic: str = TOPIC,
                     partitions=(0, 1)) -> dict[int, int | None]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
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
    seen, _ = asyncio.run(_consume(kafka.bootstrap, "g2",
                                   200 - sum(v or 0 for v in committed.values())))
    assert len(seen) + sum(v or 0 for v in committed.values()) == 200
    assert sum(v or 0 for v in committed.values()) < 200


def _touchpoint(i: int) -> bytes:
    import orjson

    return orjson.dumps({"event_id": f"e-{i}", "event_time": 1_795_158_900_000 + i,
                         "type": "page_view", "channel": "web", "ids": {"cookie": f"c-{i}"}})


def _produce_with(bootstrap: str, topic: str, codec: str, indices: range) -> None:
    """confluent-kafka (librdkafka) producing in `codec`, flushed: its own record batches."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 5, "enable.idempotence": False})
    for i in indices:
        producer.produce(topic, _touchpoint(i), partition=0)
    assert producer.flush(30) == 0


async def _topic_values(bootstrap: str, topic: str, timeout: float = 20.0) -> list[bytes]:
    """Every value of a one-partition topic, up to its true end offset."""
    from aiokafka import AIOKafkaConsumer

    from streams.kafka.patches import true_end_offsets

    tp = TopicPartition(topic, 0)
    end = (await true_end_offsets(bootstrap, [tp]))[tp]
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while await consumer.position(tp) < end and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values.extend(r.value for r in records)
        return values
    finally:
        await consumer.stop()


async def _write_sink(bootstrap: str, topics, sink, dead: int) -> None:
    """Run the sink stage until the dead letters' rows are in ClickHouse."""
    from streams.kafka.clients import KafkaClients
    from streams.kafka.producer import BatchProducer
    from streams.worker.sink_stage import SinkStage

    stage = SinkStage(KafkaClients.at(bootstrap), topics, "g-unreadable-sink", sink,
                      BatchProducer(bootstrap, client_id="sink-test"), max_age_s=0.1,
                      session_timeout_s=6)
    task = asyncio.create_task(stage.run())
    try:
        for _ in range(300):
            if stage.written.get("dead_letters", 0) >= dead:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await stage.producer.stop()


def test_an_unreadable_batch_is_dead_lettered_and_the_records_after_it_flow(kafka, ch_url,
                                                                           monkeypatch, caplog):
    """lz4 is made unavailable in this process (`aiokafka.codec.has_lz4` -> False: what a worker
    without cramjam sees). The worker's ingest path, IngestConsumer -> Shell.ingest -> the broker
    and ClickHouse, turns each lz4 batch into one dead letter with its position and forwards every
    record before and after it; the group's offset moves past it, so a restart does not loop on
    it."""
    import logging

    import orjson
    from prometheus_client import REGISTRY

    from sinks.clickhouse import connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink
    from streams.config import Topics
    from streams.kafka.producer import BatchProducer
    from streams.worker.shell import CONTROL, Shell

    topics = Topics()
    kafka.create_topics({topics.touchpoints: 1, topics.stitch: 1, topics.dead_letter: 1})
    for codec, indices in (("none", range(0, 40)), ("lz4", range(40, 80)),
                           ("none", range(80, 120))):
        _produce_with(kafka.bootstrap, topics.touchpoints, codec, indices)
    monkeypatch.setattr("aiokafka.codec.has_lz4", lambda: False)
    counted = {"topic": topics.touchpoints, "partition": "0"}
    before = REGISTRY.get_sample_value("parcours_unreadable_batches_total", counted) or 0.0

    client = connect(ch_url("ch"))
    migrate(client)
    shell = Shell(topics, BatchProducer(kafka.bootstrap, client_id="unreadable-test"))
    handled: list = []
    done = asyncio.Event()

    async def handle(topic: str, records: list) -> None:
        await shell.ingest(records)
        handled.extend(records)
        if records[-1].offset == 119:
            done.set()

    async def run() -> None:
        consumer = IngestConsumer(kafka.bootstrap, [topics.touchpoints], "g-unreadable", handle,
                                  max_records=25, max_wait_s=0.2, fetch_max_wait_ms=20,
                                  session_timeout_s=6)
        task = asyncio.create_task(consumer.run())
        try:
            await asyncio.wait_for(done.wait(), 30)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await shell.producer.stop()

    with caplog.at_level(logging.ERROR, "parcours.kafka"):
        asyncio.run(run())

    markers = [r for r in handled if isinstance(r.value, Exception)]
    assert markers, "the lz4 records were read: has_lz4 was not consulted"
    spans = [range(m.value.first_offset, m.value.next_offset) for m in markers]
    assert sorted(o for span in spans for o in span) == list(range(40, 80))  # exactly the lz4 ones
    stitched = [tp for chunk in asyncio.run(_topic_values(kafka.bootstrap, topics.stitch))
                for tp in orjson.loads(chunk) if CONTROL not in tp]  # not the "resume" reports
    assert sorted(int(tp["event_id"][2:]) for tp in stitched) == [*range(0, 40), *range(80, 120)]
    dead = [orjson.loads(v)
            for v in asyncio.run(_topic_values(kafka.bootstrap, topics.dead_letter))]
    assert [(d["error"], d["topic"], d["partition"], d["offset"], d["original"]) for d in dead] == \
        [("unreadable", topics.touchpoints, 0, span[-1], "") for span in spans]
    assert all("Libraries for lz4 compression codec not found" in d["reason"] for d in dead)
    asyncio.run(_write_sink(kafka.bootstrap, topics, ClickHouseSink(client), len(spans)))
    rows = client.query("SELECT error, offset, reason FROM dead_letters FINAL "
                        "ORDER BY offset").result_rows
    assert [(e, o) for e, o, _ in rows] == [("unreadable", span[-1]) for span in spans]
    lines = [r.getMessage() for r in caplog.records if r.name == "parcours.kafka"]
    assert [line.split(":")[0] for line in lines] == \
        [f"unreadable record batch touchpoints[0] offsets {s[0]}-{s[-1]}" for s in spans]
    after = REGISTRY.get_sample_value("parcours_unreadable_batches_total", counted)
    assert after == before + len(spans)
    assert asyncio.run(_committed(kafka.bootstrap, "g-unreadable", topics.touchpoints, (0,))) \
        == {0: 120}
