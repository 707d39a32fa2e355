"""End to end on real protocols: embedded Kafka broker -> `parcours worker` process -> chDB.

Touchpoints (valid and malformed) are produced with aiokafka; the assertions read ClickHouse rows
and the dead-letter topic. Nothing is mocked.
"""
from __future__ import annotations

import asyncio
import base64
import time
import urllib.request
from collections import defaultdict
from datetime import datetime, timezone

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from sinks.clickhouse import close, connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams import simulate
from streams.cli.replay import replay
from streams.config import Topics
from streams.embedded.worker_process import WorkerProcess, count_until, free_port
from streams.ingest.normalise import ingest_batch
from streams.kafka.patches import true_end_offsets
from streams.pipeline import Pipeline

pytestmark = pytest.mark.e2e
START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()


async def _produce(bootstrap: str, raws: list[bytes]) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(TOPICS.touchpoints, raw) for raw in raws]
        return [((md := await f).partition, md.offset) for f in futures]
    finally:
        await producer.stop()


async def _read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list:
    """Every record of a single-partition topic, up to its true end offset."""
    from aiokafka import TopicPartition

    tp = TopicPartition(topic, 0)
    end = (await true_end_offsets(bootstrap, [tp]))[tp]
    return await _read_all(bootstrap, topic, end, timeout)


async def _read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    records: list = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _journeys(profiles: int) -> tuple[list[dict], list[bytes]]:
    events = list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=profiles, seed=11, start=START).events()))
    return events, simulate.malformed_events(8, seed=3)


def _run_worker(kafka, tmp_path, ch_url: str, raws: list[bytes], expected: int, name: str,
                settled: dict[str, float]):
    """Run a worker over `raws` until `expected` records reach the stitched and dead-letter topics,
    then scrape its metrics once the `settled` counters have reached their values (a batch's
    counters are bumped after its records leave, so they trail the topics by a moment)."""
    port = free_port()
    worker = WorkerProcess(kafka.url, ch_url, tmp_path / "data", app_id=f"e2e-{name}",
                           log_path=tmp_path / "worker.log", metrics_port=port)
    with worker:
        offsets = asyncio.run(_produce(kafka.bootstrap, raws))
        try:
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched, TOPICS.dead_letter],
                                    expected, timeout=180, alive=worker.alive))
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")
        scraped = _scrape_settled(port, settled, timeout=30)
    assert worker.proc.returncode in (0, -15), worker.log_tail(60)
    return ch_url, offsets, scraped


def _scrape_settled(port: int, settled: dict[str, float], timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                      timeout=10).read().decode()
        samples = _samples(text)
        if all(samples.get(name, 0) >= value for name, value in settled.items()) \
                or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def _samples(text: str) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}


def test_worker_stitches_credits_and_dead_letters(kafka, tmp_path, ch_url):
    """One input partition: the stream must give exactly what `parcours replay` gives."""
    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.stitch: 1})
    events, malformed = _journeys(profiles=150)
    raws = [orjson.dumps(e) for e in events] + malformed
    counted = {f'parcours_events_in_total{{topic="{TOPICS.touchpoints}"}}': len(raws),
               f'parcours_events_out_total{{topic="{TOPICS.dead_letter}"}}': len(malformed),
               f'parcours_events_in_total{{topic="{TOPICS.stitch}"}}': len(events),
               'parcours_sink_rows_total{table="touchpoints"}': len(events)}
    stream_url, offsets, metrics = _run_worker(kafka, tmp_path, ch_url(), raws, len(raws), "exact",
                                               settled=counted)

    # Prometheus metrics of the worker count what went through, exactly once
    assert {name: metrics.get(name) for name in counted} == counted
    assert sum(v for k, v in metrics.items()
               if k.startswith("parcours_dead_letters_total")) == len(malformed)

    # dead-letter topic: each malformed record, with its original bytes, offset and a reason
    dead = [orjson.loads(r.value)
            for r in asyncio.run(_read_all(kafka.bootstrap, TOPICS.dead_letter, len(malformed)))]
    assert len(dead) == len(malformed)
    by_offset = {d["offset"]: d for d in dead}
    for raw, (partition, offset) in zip(raws[len(events):], offsets[len(events):]):
        letter = by_offset[offset]
        assert base64.b64decode(letter["original"]) == raw
        assert letter["topic"] == TOPICS.touchpoints and letter["partition"] == partition
        assert letter["reason"] and letter["error"] in ("decode", "format", "validation",
                                                        "oversized")

    client = connect(stream_url)
    assert client.query("SELECT count() FROM touchpoints FINAL").result_rows[0][0] == len(events)
    assert client.query("SELECT count() FROM dead_letters").result_rows[0][0] == len(malformed)
    # raw PII never lands downstream of ingest
    leaked = client.query("SELECT count() FROM touchpoints WHERE "
                          "arrayExists(v -> position(v, '@') > 0, mapValues(ids))"
                          ).result_rows[0][0]
    assert leaked == 0

    # credit sums to 1 per conversion and model
    sums = client.query("SELECT model, conversion_id, sum(credit) FROM attribution_credit FINAL "
                        "GROUP BY model, conversion_id").result_rows
    assert sums and all(abs(s - 1.0) < 1e-9 for _, _, s in sums)
    conversions = {c for _, c, _ in sums}
    expected_conversions = {e["event_id"] for e in events if e["type"] in ("purchase", "lead")}
    assert conversions == expected_conversions

    # identity: merges reach the identity topic and the identity_events table; Martin is one profile
    merges = [orjson.loads(r.value)
              for r in asyncio.run(_read_topic(kafka.bootstrap, TOPICS.identity)) if r.value]
    merges = [m for m in merges if m["kind"] == "merge"]
    assert merges and all(m["survivor"] and m["absorbed"] and m["event_id"] for m in merges)
    assert client.query("SELECT count() FROM identity_events FINAL WHERE kind = 'merge'"
                        ).result_rows[0][0] == len(merges)
    martin_profiles = {p for (p,) in client.query(
        "SELECT DISTINCT profile_id FROM identity_map FINAL WHERE is_deleted = 0 AND "
        "identifier IN ('c-9', 'd-1', 'u-42', 'L-77')").result_rows}
    assert len(martin_profiles) == 1

    # Martin's purchase is credited across the channels of his journey
    martin = [e for e in events if e["event_id"].startswith("martin")]
    purchase = next(e for e in martin if e["type"] == "purchase")
    channels = {c for (c,) in client.query(
        "SELECT channel FROM attribution_credit FINAL WHERE conversion_id = {c:String} "
        "AND model = 'linear'", parameters={"c": purchase["event_id"]}).result_rows}
    assert {"email", "display", "push"} <= channels

    # one code path: replaying the same records gives the same credit rows
    stream_rows = client.query("SELECT model, conversion_id, touchpoint_id, profile_id, channel, "
                               "round(credit, 9) FROM attribution_credit FINAL").result_rows
    moment_queries = (
        "SELECT trigger_id, rule, channel, profile_id, fired_at, message FROM triggers FINAL",
        "SELECT suppression_id, rule, reason, channel, profile_id, at FROM suppressions FINAL",
        "SELECT event_id, watermark FROM late_events FINAL",
        "SELECT path_id, profile_id, converted, revenue, channels, transitions "
        "FROM attribution_paths FINAL")
    stream_moments = [sorted(client.query(sql).result_rows) for sql in moment_queries]
    assert stream_moments[0], "the default rule pack fires on this population"
    assert stream_moments[3], "closed paths reach attribution_paths"
    close(client)
    source = tmp_path / "input.jsonl"
    source.write_bytes(b"\n".join(raws) + b"\n")
    replay_url = ch_url("ch-replay")
    sink = ClickHouseSink(migrate_and_return(replay_url))
    result = replay(source, tmp_path / "replay", sink=sink)
    sink.close()
    assert result.dead_lettered == len(malformed)
    replay_client = connect(replay_url)
    replay_rows = replay_client.query("SELECT model, conversion_id, touchpoint_id, profile_id, "
                                      "channel, round(credit, 9) FROM attribution_credit FINAL"
                                      ).result_rows
    assert sorted(replay_rows) == sorted(stream_rows)
    # moments too: the same triggers (ids, channels, times), suppressions and late events
    for sql, streamed in zip(moment_queries, stream_moments):
        assert sorted(replay_client.query(sql).result_rows) == streamed, sql


def migrate_and_return(url: str):
    client = connect(url)
    migrate(client)
    return client


def test_worker_on_partitioned_input_survives_kill(kafka, tmp_path, ch_url):
    """Four input partitions, and a worker killed with SIGKILL mid-stream: a second worker resumes
    from committed offsets and recovered tables; nothing is lost and nothing is counted twice."""
    kafka.create_topics({TOPICS.touchpoints: 4, TOPICS.stitch: 1})
    events, malformed = _journeys(profiles=300)
    raws = [orjson.dumps(e) for e in events] + malformed
    url = ch_url()
    common = dict(app_id="e2e-kill", log_path=tmp_path / "worker.log")
    first = WorkerProcess(kafka.url, url, tmp_path / "data", **common).start()
    try:
        half = len(raws) // 2
        asyncio.run(_produce(kafka.bootstrap, raws[:half]))
        asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], half // 3, timeout=120,
                                alive=first.alive))
    finally:
        first.kill()
    second = WorkerProcess(kafka.url, url, tmp_path / "data", **common)
    with second:
        asyncio.run(_produce(kafka.bootstrap, raws[half:]))

        def key(topic, record):
            value = orjson.loads(record.value)
            return ("dead", value["partition"], value["offset"]) if "reason" in value \
                else ("stitched", value["event_id"])

        try:
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched, TOPICS.dead_letter],
                                    len(raws), timeout=180, alive=second.alive, key=key))
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{second.log_tail(60)}")
    client = connect(url)
    assert client.query("SELECT count() FROM touchpoints FINAL").result_rows[0][0] == len(events)
    per_conversion = defaultdict(float)
    for model, conv, credit in client.query("SELECT model, conversion_id, sum(credit) "
                                            "FROM attribution_credit FINAL "
                                            "GROUP BY model, conversion_id").result_rows:
        per_conversion[(model, conv)] = credit
    assert per_conversion and all(abs(v - 1.0) < 1e-9 for v in per_conversion.values())
    expected_conversions = {e["event_id"] for e in events if e["type"] in ("purchase", "lead")}
    assert {c for _, c in per_conversion} == expected_conversions
    # the closed paths of the data-driven models: one per conversion, whatever was replayed
    converted = client.query("SELECT path_id FROM attribution_paths FINAL "
                             "WHERE converted").result_rows
    assert sorted(p for (p,) in converted) == sorted(expected_conversions)

    # the identity graph recovered by the second worker ends where one uninterrupted run ends,
    # although the four partitions interleaved differently: profile ids do not depend on arrival
    # order
    stream_identity = set(client.query("SELECT identifier_type, identifier, profile_id "
                                       "FROM identity_map FINAL WHERE is_deleted = 0").result_rows)
    pipeline = Pipeline()
    good, _ = ingest_batch([(raw, "t", 0, i) for i, raw in enumerate(raws)])
    pipeline.process(good)
    assert stream_identity == {(r["type"], r["value"], r["profile_id"])
                               for r in pipeline.identity.export()}


def test_forget_erases_the_whole_profile(kafka, tmp_path, ch_url):
    """`parcours forget` through a running worker: state, ClickHouse rows and a tombstone."""
    import subprocess
    import sys

    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.stitch: 1})
    events = list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=40, seed=5, start=START).events()))
    raws = [orjson.dumps(e) for e in events]
    url = ch_url()
    worker = WorkerProcess(kafka.url, url, tmp_path / "data", app_id="e2e-forget",
                           log_path=tmp_path / "worker.log")
    env = {**worker.env, "PARCOURS_LOG_LEVEL": "WARNING"}

    def forget(identifier: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "streams.cli", "forget", "--identifier",
                               identifier, "--wait", "60"], env=env, capture_output=True, text=True,
                              timeout=120)

    with worker:
        asyncio.run(_produce(kafka.bootstrap, raws))
        asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], len(raws), timeout=120,
                                alive=worker.alive))
        done = forget("email:Martin@Example.com")
        assert done.returncode == 0, done.stderr + worker.log_tail()
        assert "erased profile p-" in done.stdout
        profile_id = done.stdout.split("erased profile ")[1].split()[0]
        unknown = forget("loyalty:NOBODY")
        assert unknown.returncode == 0 and "nothing to erase" in unknown.stdout
        bad = forget("martin")
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "TYPE:VALUE" in bad.stderr

    identity = asyncio.run(_read_topic(kafka.bootstrap, TOPICS.identity))
    tombstones = [r for r in identity if r.value is None]
    assert [r.key.decode() for r in tombstones] == [profile_id]

    client = connect(url)
    martin_ids = ["c-9", "d-1", "u-42", "L-77"]
    q = lambda sql: client.query(sql, parameters={"p": profile_id,
                                                  "ids": martin_ids}).result_rows[0][0]
    assert q("SELECT count() FROM touchpoints WHERE profile_id = {p:String} OR "
             "hasAny(mapValues(ids), {ids:Array(String)})") == 0
    assert q("SELECT count() FROM identity_map WHERE profile_id = {p:String} OR "
             "has({ids:Array(String)}, identifier)") == 0
    assert q("SELECT count() FROM attribution_credit WHERE conversion_id = 'martin-11'") == 0
    others = len([e for e in events if not e["event_id"].startswith("martin")])
    assert q("SELECT count() FROM touchpoints FINAL") == others
    # Martin entered the shipped pack's experiment (the replay of the same events says so): his
    # row is gone, the others' stay
    source = tmp_path / "events.jsonl"
    simulate.write_jsonl(events, source)
    replay(source, tmp_path / "replay")
    entered = [orjson.loads(line) for line in
               (tmp_path / "replay" / "experiment_exposures.jsonl").read_bytes().splitlines()]
    assert profile_id in {row["profile_id"] for row in entered}
    assert q("SELECT count() FROM experiment_exposures WHERE profile_id = {p:String}") == 0
    assert q("SELECT count() FROM experiment_exposures FINAL WHERE is_deleted = 0") > 0
