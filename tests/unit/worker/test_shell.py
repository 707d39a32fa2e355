"""The shell's batch handling: a ClickHouse outage holds the batch instead of losing it."""
from __future__ import annotations

import asyncio

import pytest

from sinks.clickhouse import connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink, ClickHouseTableWriter
from streams.config import Topics
from streams.pipeline import Pipeline
from streams.worker.shell import Shell, chunk_json_lists


class _FlakyWriter(ClickHouseTableWriter):
    """A real chDB writer whose first `failures` inserts fail, as during a server restart."""

    failures = 0

    def _write(self, rows):
        if type(self).failures > 0:
            type(self).failures -= 1
            raise ConnectionError("Connection refused (ClickHouse restarting)")
        super()._write(rows)


class _Producer:
    def __init__(self):
        self.records = []

    async def send_all(self, records):
        self.records.extend(records)
        return len(records)


def test_a_clickhouse_outage_holds_the_batch_until_it_is_written(tmp_path):
    client = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(client)
    sink = ClickHouseSink(client, max_attempts=1)
    sink._writers["touchpoints"].__class__ = _FlakyWriter
    _FlakyWriter.failures = 3
    shell = Shell(Pipeline(), sink, Topics(), _Producer())
    shell.retry_delay = shell.max_retry_delay = 0.01
    rows = {"touchpoints": [{"event_id": f"e{i}", "event_time": 1795158900000 + i,
                             "profile_id": "p", "type": "click", "channel": "display"}
                            for i in range(10)]}
    asyncio.run(shell._write_sink(rows))
    assert _FlakyWriter.failures == 0
    assert client.query("SELECT count() FROM touchpoints").result_rows[0][0] == 10


@pytest.mark.parametrize("sizes", [[10], [100] * 50, [5000, 10, 10]])
def test_chunks_keep_every_item_in_order_under_the_size_limit(sizes):
    import orjson

    items = [{"event_id": f"e{i}", "pad": "x" * n} for i, n in enumerate(sizes)]
    chunks = chunk_json_lists(items, max_bytes=2048)
    assert [item for chunk in chunks for item in orjson.loads(chunk)] == items
    assert all(len(c) <= 2048 or len(orjson.loads(c)) == 1 for c in chunks)


def test_idle_partitions_are_reported_once_after_a_quiet_period_and_free_the_watermark():
    import orjson

    from streams.worker.shell import CONTROL

    topics = Topics()
    producer = _Producer()
    pipeline = Pipeline(sources=2)
    shell = Shell(pipeline, None, topics, producer)
    shell.positions[(topics.touchpoints, 0)] = 10
    # partition 0: consumed to its high-water mark; partition 1: 5 records not consumed yet
    # first look: not quiet long enough
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 1
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0  # reported once
    (topic, _key, value), = producer.records
    assert topic == topics.stitch and orjson.loads(value) == [{CONTROL: "idle", "source": "0"}]
    # the journey agent applies it: the watermark no longer waits for partition 0
    out, size = shell._run(orjson.loads(value))
    assert size == 0 and out.triggers == []
    assert pipeline.watermark.idle == {"0"}


def test_a_partition_read_to_its_end_before_a_restart_is_reported_idle():
    """After a restart nothing has been forwarded from a partition an earlier run read to its end:
    the consumer's position (the group's committed offset) shows it is consumed."""
    topics = Topics()
    producer = _Producer()
    shell = Shell(Pipeline(sources=2), None, topics, producer)
    partitions = [(0, 10), (1, 5)]
    started = {0: 10, 1: 3}  # partition 1: two records not consumed yet
    assert asyncio.run(shell.report_idle(partitions, started)) == 0  # first look
    assert asyncio.run(shell.report_idle(partitions, started)) == 1
    import orjson

    from streams.worker.shell import CONTROL

    (_topic, _key, value), = producer.records
    assert orjson.loads(value) == [{CONTROL: "idle", "source": "0"}]
