"""Every compression codec a producer may use, end to end: confluent-kafka (librdkafka) produces
touchpoints and preference records with no compression, gzip, snappy, lz4 and zstd to the embedded
broker, and one `parcours worker` process reads them all.

Checked at both ends: what ingest forwards to `parcours.stitch` (the ingest consumer read every
record of `touchpoints` and `preferences`), and what the journey releases to `touchpoints.stitched`
and the ClickHouse `touchpoints` table (released once the watermark passes an event: the codec
events are two days old, and a last few dated now move the watermark past them).
"""
from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from sinks.clickhouse import close, connect
from streams.config import Topics
from streams.embedded.worker_process import WorkerProcess
from streams.kafka.unreadable_batches import getmany_readable, install, is_unreadable

pytestmark = pytest.mark.e2e
TOPICS = Topics()
CODECS = ("none", "gzip", "snappy", "lz4", "zstd")
PER_CODEC = 200
PREFERENCES_PER_CODEC = 10
CLOSING = 5  # touchpoints dated now, after the others: they carry the watermark past them


def _produce(bootstrap: str, codec: str, start_ms: int) -> None:
    """One librdkafka producer per codec, flushed: the codec's records are its own batches."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 5, "enable.idempotence": False, "acks": "all"})
    for i in range(PER_CODEC):
        producer.produce(TOPICS.touchpoints, orjson.dumps({
            "event_id": f"{codec}-{i}", "event_time": start_ms + i * 1000, "type": "page_view",
            "channel": "web", "ids": {"cookie": f"c-{codec}-{i}"}}), partition=0)
    for i in range(PREFERENCES_PER_CODEC):
        producer.produce(TOPICS.preferences, orjson.dumps({
            "ids": {"cookie": f"c-{codec}-{i}"}, "channel": "email", "opt_in": True,
            "updated_at": start_ms}), partition=0)
    assert producer.flush(30) == 0


def _produce_closing(bootstrap: str) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False})
    now = int(time.time() * 1000)
    for i in range(CLOSING):
        producer.produce(TOPICS.touchpoints, orjson.dumps({
            "event_id": f"closing-{i}", "event_time": now, "type": "page_view", "channel": "web",
            "ids": {"cookie": f"c-closing-{i}"}}), partition=0)
    assert producer.flush(30) == 0


async def _event_ids(bootstrap: str, topic: str, want: set[str], *, timeout: float, alive,
                     chunks: bool, consent: int = 0) -> set[str]:
    """Event ids on `topic` (JSON arrays of touchpoints with `chunks`) until `want` are all
    there, and `consent` ids of consent touchpoints (made from preference records: "pref-...",
    forwarded in their own batches, so maybe after the touchpoints)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        def consents() -> int:
            return sum(1 for i in seen if i.startswith("pref-"))

        while not want <= seen or consents() < consent:
            if time.monotonic() > deadline or not alive():
                raise TimeoutError(f"{len(want & seen)} of {len(want)} and {consents()} of "
                                   f"{consent} consent touchpoints on {topic} "
                                   f"({'worker alive' if alive() else 'worker stopped'})")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value is None:
                        continue
                    items = orjson.loads(record.value)
                    for item in items if chunks else [items]:
                        if "event_id" in item:
                            seen.add(item["event_id"])
        return seen
    finally:
        await consumer.stop()


async def _compressed_spans(bootstrap: str) -> list[range]:
    """Offsets of `touchpoints` this process reads as unreadable batches once every codec's
    library is made unavailable: the batches that really were compressed."""
    tp = TopicPartition(TOPICS.touchpoints, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False)
    await consumer.start()
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    spans = []
    try:
        while await consumer.position(tp) < len(CODECS) * PER_CODEC:
            for records in (await getmany_readable(consumer, timeout_ms=500)).values():
                spans += [range(r.value.first_offset, r.value.next_offset)
                          for r in records if is_unreadable(r)]
        return spans
    finally:
        await consumer.stop()


def test_the_worker_reads_every_codec(kafka, tmp_path, ch_url, monkeypatch):
    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.preferences: 1, TOPICS.stitch: 1})
    two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
    url = ch_url("ch")
    worker = WorkerProcess(kafka.url, url, tmp_path / "data", app_id="e2e-codecs",
                           log_path=tmp_path / "worker.log")
    codec_ids = {f"{codec}-{i}" for codec in CODECS for i in range(PER_CODEC)}
    with worker:
        for n, codec in enumerate(CODECS):
            _produce(kafka.bootstrap, codec, two_days_ago + n * PER_CODEC * 1000)
        _produce_closing(kafka.bootstrap)
        try:
            forwarded = asyncio.run(_event_ids(
                kafka.bootstrap, TOPICS.stitch, codec_ids, timeout=120, alive=worker.alive,
                chunks=True, consent=len(CODECS) * PREFERENCES_PER_CODEC))
            stitched = asyncio.run(_event_ids(
                kafka.bootstrap, TOPICS.stitched, codec_ids, timeout=120, alive=worker.alive,
                chunks=False))
        except TimeoutError as exc:
            pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")
    assert worker.proc.returncode in (0, -15), worker.log_tail(60)
    consent = {i for i in forwarded if i.startswith("pref-")}
    assert len(consent) == len(CODECS) * PREFERENCES_PER_CODEC  # distinct records, distinct ids
    assert codec_ids <= stitched
    log = (tmp_path / "worker.log").read_text()
    assert "unreadable" not in log and "UnsupportedCodecError" not in log, log[-3000:]
    client = connect(url)
    try:
        rows = client.query("SELECT splitByChar('-', event_id)[1] AS codec, count() "
                            "FROM touchpoints FINAL WHERE NOT startsWith(event_id, 'closing') "
                            "GROUP BY codec").result_rows
        assert dict(rows) == {**{codec: PER_CODEC for codec in CODECS},
                              # consent touchpoints
                              "pref": len(CODECS) * PREFERENCES_PER_CODEC}
        assert client.query("SELECT count() FROM dead_letters").result_rows == [(0,)]
    finally:
        close(client)
    # the batches were compressed as asked: without the libraries, only "none" reads
    install()
    for name in ("gzip", "snappy", "lz4", "zstd"):
        monkeypatch.setattr(f"aiokafka.codec.has_{name}", lambda: False)
    spans = asyncio.run(_compressed_spans(kafka.bootstrap))
    assert sorted(o for span in spans for o in span) == list(range(PER_CODEC,
                                                                   len(CODECS) * PER_CODEC))
