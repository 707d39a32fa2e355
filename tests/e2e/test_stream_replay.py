"""The worker on partitioned input gives what `parcours replay` gives, row for row.

Martin plus a synthetic population go to `touchpoints` with 4 partitions, keyed as web and app
SDKs key them (`parcours simulate --kafka`: the device, else the cookie, else the first
identifier), so one person's events sit on several partitions. A real `parcours worker` reads
them into chDB: once uninterrupted, produced by librdkafka (confluent-kafka, the C client behind
most non-Python producers) in lz4 batches, and once produced by aiokafka and killed with SIGKILL
mid-stream, then restarted. Amid them come hostile records: valid-looking touchpoints dated 2099 on
every partition, and malformed ones; they are dead-lettered and move no partition's time. The
`FINAL` tables are compared with `parcours replay` of the same records, wall-clock columns left
out. Nothing is mocked.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import orjson
import pytest

from sinks.clickhouse import close, connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams import simulate
from streams.cli.replay import replay
from streams.config import Topics
from streams.embedded.worker_process import WorkerProcess, count_until, free_port

pytestmark = pytest.mark.e2e
START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()
PARTITIONS = 4
# every column but the wall-clock ones (computed_at, updated_at, ingested_at)
QUERIES = {
    "attribution_credit": "SELECT conversion_id, conversion_time, profile_id, model, "
                          "touchpoint_id, touchpoint_time, channel, campaign, publisher, "
                          "round(credit, 9), round(revenue_credit, 6) "
                          "FROM attribution_credit FINAL",
    "attribution_paths": "SELECT path_id, closed_at, profile_id, converted, conversion_type, "
                         "revenue, touches, channels, channel_set, transitions "
                         "FROM attribution_paths FINAL",
    "triggers": "SELECT * FROM triggers FINAL",
    "suppressions": "SELECT * FROM suppressions FINAL",
    "identity_map": "SELECT identifier_type, identifier, profile_id, is_deleted "
                    "FROM identity_map FINAL",
    "touchpoints": "SELECT event_id, event_time, profile_id FROM touchpoints FINAL",
    "late_events": "SELECT event_id FROM late_events FINAL",
    "dead_letters": "SELECT error, count() FROM dead_letters FINAL GROUP BY error",
    "experiment_exposures": "SELECT experiment, profile_id, arm, control, rule, trigger_id, "
                            "entered_at, converted, conversions, round(revenue, 6), version "
                            "FROM experiment_exposures FINAL WHERE is_deleted = 0",
    "profile_traits": "SELECT profile_id, created_by, first_seen, last_seen, purchases, "
                      "round(revenue, 6), last_purchase_at, lifecycle, lifecycle_history, "
                      "top_channel, rfm, declared, audiences, consent, as_of, version "
                      "FROM profile_traits FINAL WHERE is_deleted = 0",
    "audience_membership": "SELECT * EXCEPT ingested_at FROM audience_membership FINAL",
}
FUTURE, MALFORMED = 200, 20
MARTIN_TOUCHES = ["martin-01", "martin-02", "martin-03", "martin-04", "martin-09", "martin-10"]


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=500, seed=17, start=START).events()))


@pytest.fixture(scope="module")
def records(events) -> list:
    """What the producers send: the events, with future-dated and malformed records halfway."""
    future = [{"event_id": f"future-{i}", "event_time": "2099-03-01T00:00:00Z", "type": "page_view",
               "channel": "web", "ids": {"cookie": f"c-future-{i}"}} for i in range(FUTURE)]
    middle = len(events) // 2
    return events[:middle] + future + simulate.malformed_events(MALFORMED, seed=5) + events[middle:]


@pytest.fixture(scope="module")
def replayed(records, tmp_path_factory) -> dict[str, list]:
    """`parcours replay` of the records, read back from its own chDB."""
    root = tmp_path_factory.mktemp("replay")
    source = root / "input.jsonl"
    simulate.write_jsonl(records, source)
    url = f"chdb://{root / 'ch'}"
    client = connect(url)
    migrate(client)
    sink = ClickHouseSink(client)
    replay(source, root / "out", sink=sink)
    sink.close()
    tables = _tables(url)
    close(client)
    return tables


def _tables(url: str) -> dict[str, list]:
    client = connect(url)
    try:
        return {name: sorted(client.query(sql).result_rows) for name, sql in QUERIES.items()}
    finally:
        close(client)


def _produce(bootstrap: str, records: list) -> None:
    assert asyncio.run(simulate.produce(records, bootstrap, TOPICS.touchpoints)) == len(records)


def _produce_librdkafka(bootstrap: str, records: list) -> list[int]:
    """The same keys with librdkafka, lz4-compressed, and the Java client's partitioner (murmur2,
    as aiokafka); returns the partition of each record."""
    from confluent_kafka import Producer

    partitions: list[int] = [-1] * len(records)
    failed: list = []

    def done(i):
        def report(err, msg):
            if err is not None:
                failed.append(err)
            else:
                partitions[i] = msg.partition()
        return report

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "lz4",
                         "partitioner": "murmur2_random", "linger.ms": 5,
                         "enable.idempotence": False, "acks": "all"})
    for i, record in enumerate(records):
        value = record if isinstance(record, bytes) else orjson.dumps(record)
        producer.produce(TOPICS.touchpoints, value, key=simulate.partition_key(record, None),
                         on_delivery=done(i))
        producer.poll(0)
    assert producer.flush(60) == 0 and not failed, failed
    return partitions


def _stitched_key(topic, record):
    return orjson.loads(record.value)["event_id"]


def _settled(worker: WorkerProcess, bootstrap: str, events: list[dict],
             timeout: float = 240) -> None:
    """Every event is out on `touchpoints.stitched` (each is released once every partition has
    passed it, the last ones when every partition is idle), then its batch's rows are in."""
    try:
        asyncio.run(count_until(bootstrap, [TOPICS.stitched], len(events),
                                timeout=timeout, alive=worker.alive, key=_stitched_key))
        worker.wait_settled()
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")


def _worker(kafka, tmp_path, url: str, name: str) -> WorkerProcess:
    return WorkerProcess(kafka.url, url, tmp_path / "data", app_id=f"e2e-{name}",
                         log_path=tmp_path / "worker.log", metrics_port=free_port(),
                         extra_env={"PARCOURS_IDLE_SECONDS": "2"})


def _assert_same(stream: dict[str, list], replayed: dict[str, list], events: list[dict]) -> None:
    assert stream["late_events"] == replayed["late_events"] == []
    dead = dict(stream["dead_letters"])
    # every hostile record is a dead letter (replay skips the empty ones: blank lines of its file)
    assert dead.pop("clock") == dict(replayed["dead_letters"])["clock"] == FUTURE
    assert sum(dead.values()) == MALFORMED
    for name in QUERIES.keys() - {"dead_letters"}:
        assert stream[name] == replayed[name], name
    assert len(stream["touchpoints"]) == len(events)
    conversions = {e["event_id"] for e in events if e["type"] in ("purchase", "lead")}
    assert {row[0] for row in stream["attribution_credit"]} <= conversions
    assert stream["triggers"] and stream["attribution_paths"]
    martin = sorted(row[4] for row in stream["attribution_credit"]
                    if row[0] == "martin-11" and row[3] == "linear")
    assert martin == MARTIN_TOUCHES


def test_four_partitions_keyed_by_device_give_the_replay(kafka, tmp_path, ch_url, events, records,
                                                         replayed):
    kafka.create_topics({TOPICS.touchpoints: PARTITIONS, TOPICS.stitch: 1})
    url = ch_url()
    worker = _worker(kafka, tmp_path, url, "stream-replay")
    with worker:
        partitions = _produce_librdkafka(kafka.bootstrap, records)
        _settled(worker, kafka.bootstrap, events)
    assert worker.proc.returncode in (0, -15), worker.log_tail(60)
    by_id = {r["event_id"]: p for p, r in zip(partitions, records) if isinstance(r, dict)}
    assert len({by_id[e["event_id"]] for e in events if e["event_id"].startswith("martin")}) >= 2, \
        "Martin's events are spread over the partitions by their keys"
    assert len({by_id[f"future-{i}"] for i in range(FUTURE)}) == PARTITIONS
    _assert_same(_tables(url), replayed, events)


def test_a_worker_killed_mid_stream_still_gives_the_replay(kafka, tmp_path, ch_url, events, records,
                                                           replayed):
    kafka.create_topics({TOPICS.touchpoints: PARTITIONS, TOPICS.stitch: 1})
    url = ch_url()
    first = _worker(kafka, tmp_path, url, "stream-replay-kill")
    half = len(events) // 2
    with first:
        _produce(kafka.bootstrap, records[:half])
        try:  # killed while it works through the first half, some of it out, some not
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], half // 3, timeout=180,
                                    alive=first.alive))
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{first.log_tail(60)}")
        first.kill()
    second = _worker(kafka, tmp_path, url, "stream-replay-kill")
    with second:
        _produce(kafka.bootstrap, records[half:])
        _settled(second, kafka.bootstrap, events)
    assert second.proc.returncode in (0, -15), second.log_tail(60)
    _assert_same(_tables(url), replayed, events)


def _trigger_id(topic, record):
    return orjson.loads(record.value)["trigger_id"]


def test_a_minute_of_refused_inserts_and_a_kill_delay_no_trigger_and_lose_or_double_no_row(
        kafka, tmp_path, ch_url, events, records, replayed):
    """ClickHouse refuses every insert for a minute (fault injection at the client boundary,
    tests/e2e/clickhouse_down.py): triggers flow meanwhile and the sink stage says it lags. Then
    the worker is killed with SIGKILL while ClickHouse is still down (its buffered rows die with
    it) and a new one takes over; once ClickHouse is back its tables equal the replay's, with no
    row written twice."""
    import sys
    import time
    from pathlib import Path

    from streams.moments.rules.loader import load_default
    from streams.worker.app import trigger_channels

    kafka.create_topics({TOPICS.touchpoints: PARTITIONS, TOPICS.stitch: 1})
    url = ch_url()
    down = tmp_path / "clickhouse-down"
    down.touch()

    def worker_process() -> WorkerProcess:
        return WorkerProcess(
            kafka.url, url, tmp_path / "data", app_id="e2e-stream-replay-outage",
            log_path=tmp_path / "worker.log", metrics_port=free_port(),
            extra_env={"PARCOURS_IDLE_SECONDS": "2", "PARCOURS_TEST_CLICKHOUSE_DOWN": str(down)},
            command=[sys.executable, str(Path(__file__).with_name("clickhouse_down.py"))])
    trigger_topics = [TOPICS.trigger_topic(ch) for ch in trigger_channels(load_default())]
    first = worker_process()
    with first:
        since = time.monotonic()
        _produce(kafka.bootstrap, records)
        try:
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], len(events), timeout=240,
                                    alive=first.alive, key=_stitched_key))
            asyncio.run(count_until(kafka.bootstrap, trigger_topics, len(replayed["triggers"]),
                                    timeout=60, alive=first.alive, key=_trigger_id))
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{first.log_tail(60)}")
        assert down.exists()  # every trigger out while ClickHouse is down
        out = time.monotonic()  # the rows of every output seen so far were sent to the sink
        time.sleep(max(0.0, 60 - (out - since)))
        assert first.metric("parcours_sink_failing") == 1
        assert first.metric("parcours_sink_lag_records") > 0
        # the oldest unwritten row is at least as old as the outputs seen before the wait
        assert first.metric("parcours_sink_lag_seconds") >= time.monotonic() - out - 1
        first.kill()  # ClickHouse still down: nothing of the minute was written
    worker = worker_process()
    with worker:
        time.sleep(5)  # the new worker starts while ClickHouse is still down
        down.unlink()  # ClickHouse is back
        try:
            worker.wait_settled(timeout=180)
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")
        time.sleep(1.5)  # the lag gauges are set every second
        assert worker.metric("parcours_sink_failing") == 0
        assert worker.metric("parcours_sink_lag_records") == 0
    assert worker.proc.returncode in (0, -15), worker.log_tail(60)
    assert "write failed" in worker.log_tail(400)
    stream = _tables(url)
    _assert_same(stream, replayed, events)
    client = connect(url)
    try:
        for table in ("touchpoints", "attribution_credit", "triggers", "identity_map"):
            plain, final = (client.query(f"SELECT count() FROM {table}{f}").result_rows[0][0]
                            for f in ("", " FINAL"))
            assert plain == final, f"{table}: {plain - final} rows written twice"
    finally:
        close(client)
