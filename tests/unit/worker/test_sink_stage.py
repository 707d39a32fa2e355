"""The sink stage over real chDB: rows from sink-topic records, written once, committed only after
ClickHouse acknowledged them; an outage holds them (partition paused) until it is over. Records are
handed to the stage as its consumer would (the Kafka side is proved in tests/e2e)."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace

import orjson
from aiokafka import TopicPartition

from sinks.clickhouse import connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams.config import Topics
from streams.worker import sink_blocks
from streams.worker.outputs import journey_records
from streams.worker.sink_stage import SinkStage
from tests.unit.worker.recording import RecordingProducer

TOPICS = Topics()
TP = TopicPartition(TOPICS.sink, 0)


class _FlakyClient:
    """The chDB client whose inserts fail while `failing` (ClickHouse down), counted."""

    def __init__(self, client):
        self.client = client
        self.failing = 0
        self.refused = 0

    def raw_insert(self, *args, **kwargs):
        if self.failing:
            self.failing -= 1
            self.refused += 1
            raise ConnectionError("Connection refused (ClickHouse restarting)")
        return self.client.raw_insert(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


class _Consumer:
    def __init__(self):
        self.commits: list[dict] = []
        self.paused = False

    def assignment(self):
        return {TP}

    def pause(self, *tps):
        self.paused = True

    def resume(self, *tps):
        self.paused = False

    def highwater(self, tp):
        return None

    async def commit(self, offsets):
        self.commits.append(dict(offsets))


def _records(values: list[bytes]) -> list:
    return [SimpleNamespace(topic=TOPICS.sink, partition=0, offset=i, value=v, timestamp=1000 + i)
            for i, v in enumerate(values)]


def _stage(tmp_path, **options):
    client = _FlakyClient(connect(f"chdb://{tmp_path / 'ch'}"))
    migrate(client.client)
    now = [0.0]
    stage = SinkStage(None, TOPICS, "g", ClickHouseSink(client, max_attempts=1),
                      RecordingProducer(), clock=lambda: now[0], retry_delay=1.0, **options)
    stage.consumer = _Consumer()
    return stage, client, now


def _touchpoints(n: int) -> list[bytes]:
    from streams.pipeline import Emitted

    out = Emitted(stitched=[{"event_id": f"e{i}", "event_time": 1795158900000 + i,
                             "profile_id": "p", "type": "click", "channel": "display"}
                            for i in range(n)])
    _records_, sink = journey_records(out, TOPICS, 1795158900000)
    return [value for _topic, _key, value in sink]


def test_an_outage_holds_the_rows_until_clickhouse_takes_them_once(tmp_path):
    stage, client, now = _stage(tmp_path, max_rows=10)
    client.failing = 3
    stage.backlog.extend(_records(_touchpoints(25)))

    async def run():
        for _ in range(4):  # each step after the retry delay: three refusals, then written
            await stage.step()
            now[0] += 60
    asyncio.run(run())
    count = client.query("SELECT count(), uniqExact(event_id) FROM touchpoints").result_rows[0]
    assert client.refused == 3 and count == (25, 25)
    assert not stage.backlog and not stage.consumer.paused
    assert stage.consumer.commits == [{TP: 1}]  # once, after the write: one record, 25 rows


def test_nothing_is_committed_while_clickhouse_refuses(tmp_path):
    stage, client, now = _stage(tmp_path, max_rows=5)
    client.failing = 10 ** 6
    stage.backlog.extend(_records(_touchpoints(3) + _touchpoints(3)))
    asyncio.run(stage.step())
    assert stage.consumer.commits == [] and stage.consumer.paused
    assert client.query("SELECT count() FROM touchpoints").result_rows[0][0] == 0
    asyncio.run(stage.step())  # before the retry delay: no new attempt
    assert client.refused == 1


def test_an_erasure_writes_the_rows_before_it_then_deletes_and_confirms(tmp_path):
    from sinks.erasure import erase

    stage, client, now = _stage(tmp_path, erase=erase)
    values = _touchpoints(4) + [sink_blocks.erase("forget-1", "p", ["cookie:c"])]
    stage.backlog.extend(_records(values))
    asyncio.run(stage.step())
    assert client.query("SELECT count() FROM touchpoints").result_rows[0][0] == 0
    [(topic, key, value)] = stage.producer.records
    confirmation = orjson.loads(value)
    assert (topic, key) == (TOPICS.identity, b"forget-1")
    assert confirmation["kind"] == "erased" and confirmation["matched"]["touchpoints"] == 4
    assert stage.consumer.commits == [{TP: 2}]


def test_an_unreadable_record_is_dead_lettered_and_the_rest_written(tmp_path):
    stage, client, now = _stage(tmp_path, max_age_s=0.0)
    stage.backlog.extend(_records([b"not json", *_touchpoints(2)]))
    asyncio.run(stage.step())
    assert client.query("SELECT count() FROM touchpoints").result_rows[0][0] == 2
    [(topic, _key, value)] = stage.producer.records
    dead = orjson.loads(value)
    assert topic == TOPICS.dead_letter and dead["error"] == "sink_record"
    assert dead["offset"] == 0 and "not JSON" in dead["reason"]
    assert stage.consumer.commits == [{TP: 2}]


def test_the_lag_gauges_grow_while_a_write_is_stuck(tmp_path):
    """A flush to a ClickHouse that does not answer: the lag in seconds keeps growing in the
    meantime (it is set on a timer, not only between steps, so the alert is not blind)."""
    import threading
    import time

    from streams.worker import metrics

    stage, client, now = _stage(tmp_path, max_rows=1)
    answer = threading.Event()
    insert = client.raw_insert

    def stuck_insert(*args, **kwargs):
        answer.wait(10)
        return insert(*args, **kwargs)

    client.raw_insert = stuck_insert
    [record] = _records(_touchpoints(2)[:1])
    record.timestamp = int(time.time() * 1000) - 5_000  # written 5 s ago
    stage.backlog.append(record)
    metrics.SINK_LAG_SECONDS.set(0)

    async def run():
        step = asyncio.create_task(stage.step())
        reporter = asyncio.create_task(stage.report_every(0.05))
        await asyncio.sleep(0.5)
        during = metrics.SINK_LAG_SECONDS._value.get()
        assert not step.done()  # still writing
        answer.set()
        await step
        reporter.cancel()
        return during
    during = asyncio.run(run())
    assert during >= 5.0
    assert stage.consumer.commits == [{TP: 1}]
    stage.report_lag()
    assert metrics.SINK_LAG_SECONDS._value.get() == 0  # written and committed: no lag
