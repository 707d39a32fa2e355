"""The shell's batch handling: stitch chunks, idle reports (ClickHouse outages: test_sink_stage)."""
from __future__ import annotations

import asyncio

import pytest

from streams.config import Topics
from streams.shards import Sequencer
from streams.worker.journey import SequencerShell
from streams.worker.shell import Shell, chunk_json_lists
from tests.unit.worker.recording import RecordingProducer


@pytest.mark.parametrize("sizes", [[10], [100] * 50, [5000, 10, 10]])
def test_chunks_keep_every_item_in_order_under_the_size_limit(sizes):
    import orjson

    items = [{"event_id": f"e{i}", "pad": "x" * n} for i, n in enumerate(sizes)]
    chunks = chunk_json_lists(items, max_bytes=2048)
    assert [item for chunk in chunks for item in orjson.loads(chunk)] == items
    assert all(len(c) <= 2048 or len(orjson.loads(c)) == 1 for c in chunks)


def test_idle_partitions_are_reported_once_after_a_quiet_period_and_free_the_watermark():
    import orjson

    from streams.worker.shell import CONTROL, IDLE_REPEAT

    topics = Topics()
    producer = RecordingProducer()
    shell = Shell(topics, producer)
    shell.positions[(topics.touchpoints, 0)] = 10
    # partition 0: consumed to its high-water mark; partition 1: 5 records not consumed yet
    # first look: not quiet long enough
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 1
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0  # reported once...
    for _ in range(IDLE_REPEAT - 2):
        assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 1  # ...and again, while idle
    producer.records = producer.records[:1]
    (topic, _key, value), = producer.records
    assert topic == topics.stitch and orjson.loads(value) == [{CONTROL: "idle", "source": "0"}]
    # the sequencer applies it: the watermark no longer waits for partition 0
    sequencer = Sequencer(shards=2, lateness_ms=0, sources=2)
    out, size = SequencerShell(sequencer, topics, producer, list)._run(orjson.loads(value))
    assert size == 0 and out.identity == []
    assert sequencer.watermark.idle == {"0"}


def test_a_partition_read_to_its_end_before_a_restart_is_reported_idle():
    """After a restart nothing has been forwarded from a partition an earlier run read to its end:
    the consumer's position (the group's committed offset) shows it is consumed."""
    topics = Topics()
    producer = RecordingProducer()
    shell = Shell(topics, producer)
    partitions = [(0, 10), (1, 5)]
    started = {0: 10, 1: 3}  # partition 1: two records not consumed yet
    assert asyncio.run(shell.report_idle(partitions, started)) == 0  # first look
    assert asyncio.run(shell.report_idle(partitions, started)) == 1
    import orjson

    from streams.worker.shell import CONTROL

    (_topic, _key, value), = producer.records
    assert orjson.loads(value) == [{CONTROL: "idle", "source": "0"}]
