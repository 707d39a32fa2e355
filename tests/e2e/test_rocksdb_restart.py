"""A worker on RocksDB tables, killed with SIGKILL and restarted on the same data dir, resumes from
its local state: it reads only the tail of its changelogs (not all of them, as a memory store
does), and its outputs are still exactly what `parcours replay` gives on the same input. A worker
on a new disk reads every changelog record (nothing is skipped for want of local state).
"""
from __future__ import annotations

import asyncio
import time
import urllib.request
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from sinks.clickhouse import close, connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams import simulate
from streams.cli.replay import replay
from streams.config import Settings, Topics
from streams.embedded.worker_process import WorkerProcess, count_until, free_port
from streams.kafka.patches import true_end_offsets
from streams.worker.tables import TABLE_NAMES

pytestmark = pytest.mark.e2e
START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()
APP_ID = "e2e-rocks"
SHARDS = Settings.__dataclass_fields__["journey_partitions"].default
CHANGELOGS = [TopicPartition(f"{APP_ID}-{TABLE_NAMES['sequencer']}-changelog", 0)] + [
    TopicPartition(f"{APP_ID}-{TABLE_NAMES['shards']}-changelog", p) for p in range(SHARDS)]


async def _produce(bootstrap: str, raws: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(TOPICS.touchpoints, raw) for raw in raws])
    finally:
        await producer.stop()


def _changelog_records(bootstrap: str) -> int:
    """Records on every changelog (Tansu never compacts: the end offset is the count)."""
    return sum(asyncio.run(true_end_offsets(bootstrap, CHANGELOGS)).values())


def _recovered(port: int) -> float:
    """parcours_changelog_recovered_total summed over the tables."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("parcours_changelog_recovered_total{"))


def _stitched(bootstrap: str, expected: int, worker: WorkerProcess) -> None:
    try:
        asyncio.run(count_until(bootstrap, [TOPICS.stitched], expected, timeout=120,
                                alive=worker.alive,
                                key=lambda _t, r: orjson.loads(r.value)["event_id"]))
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")


def _wait_recovered(worker: WorkerProcess, port: int, at_least: float, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = _recovered(port)
            if value >= at_least:
                return value
        except OSError:
            value = None  # /metrics not served yet
        if not worker.alive() or time.monotonic() > deadline:
            pytest.fail(f"recovered {value} of {at_least} changelog records\n{worker.log_tail(60)}")
        time.sleep(0.2)


QUERIES = (
    "SELECT model, conversion_id, touchpoint_id, profile_id, channel, round(credit, 9) "
    "FROM attribution_credit FINAL",
    "SELECT trigger_id, rule, channel, profile_id, fired_at, message FROM triggers FINAL",
    "SELECT suppression_id, rule, reason, channel, profile_id, at FROM suppressions FINAL",
    "SELECT path_id, profile_id, converted, revenue, channels, transitions "
    "FROM attribution_paths FINAL",
    "SELECT identifier_type, identifier, profile_id FROM identity_map FINAL WHERE is_deleted = 0",
    "SELECT event_id, profile_id FROM touchpoints FINAL",
)


def _rows(url: str) -> list[list]:
    client = connect(url)
    try:
        return [sorted(client.query(sql).result_rows) for sql in QUERIES]
    finally:
        close(client)


def test_a_killed_rocksdb_worker_restarts_from_local_state_and_matches_replay(kafka, tmp_path,
                                                                              ch_url):
    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.stitch: 1})
    events = list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=1500, seed=5, start=START).events()))
    raws = [orjson.dumps(e) for e in events]
    half = len(raws) * 2 // 3
    url = ch_url()

    def worker(name: str, data: str, port: int) -> WorkerProcess:
        return WorkerProcess(kafka.url, url, tmp_path / data, app_id=APP_ID,
                             log_path=tmp_path / f"{name}.log", metrics_port=port,
                             extra_env={"PARCOURS_STORE": "rocksdb"})

    first = worker("first", "data", free_port()).start()
    try:
        asyncio.run(_produce(kafka.bootstrap, raws[:half]))
        _stitched(kafka.bootstrap, half, first)
        time.sleep(1.0)  # the batch's changelog follows its outputs; a crash may still cut it
    finally:
        first.kill()
    at_kill = _changelog_records(kafka.bootstrap)
    assert at_kill > 5000, at_kill  # enough state for "the tail" to mean something

    port = free_port()
    second = worker("second", "data", port)
    with second:
        asyncio.run(_produce(kafka.bootstrap, raws[half:]))
        _stitched(kafka.bootstrap, len(raws), second)
        tail = _recovered(port)
        second.wait_settled()
    assert second.proc.returncode in (0, -15), second.log_tail(60)
    # it read at most the records the first worker had produced but not yet applied locally:
    # none if the kill came after the last batch's acks, never the whole changelog
    assert tail < at_kill / 20, (tail, at_kill)

    # the outputs of the killed and the restarted worker are those of one replay
    streamed = _rows(url)
    assert streamed[0] and streamed[1] and streamed[3], "credit, triggers and closed paths"
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\n".join(raws) + b"\n")
    replay_url = ch_url("ch-replay")
    client = connect(replay_url)
    migrate(client)
    sink = ClickHouseSink(client)
    replay(source, tmp_path / "replay", sink=sink)
    sink.close()
    for sql, stream_rows, replay_rows in zip(QUERIES, streamed, _rows(replay_url)):
        assert stream_rows == replay_rows, sql

    # a worker on a new disk has no local state: it reads every changelog record
    total = _changelog_records(kafka.bootstrap)
    port = free_port()
    fresh = worker("fresh", "data-new-disk", port).start()
    try:
        assert _wait_recovered(fresh, port, total) == total
    finally:
        fresh.stop()
