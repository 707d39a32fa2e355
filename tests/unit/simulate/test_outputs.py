"""streams.simulate malformed records and outputs: JSONL file, Kafka keys, produce (e2e)."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import defaultdict

import orjson
import pytest

from streams import simulate
from streams.simulate import (
    MALFORMED_KINDS,
    Population,
    malformed_events,
    martin_journey,
    write_jsonl,
)
from tests.unit.simulate.cases import MARTIN_START, ROOT, START, touchpoint_problem


# -- malformed records ---------------------------------------------------------------------------
def _registered_schema_ids() -> set[int]:
    return set(json.loads((ROOT / "schemas" / "registry.json").read_text())["schemas"].values())


def test_malformed_events_are_each_invalid():
    records = malformed_events(60, seed=3)
    assert len(records) == 60
    assert all(isinstance(r, bytes) for r in records)
    for i, raw in enumerate(records):
        assert touchpoint_problem(raw) is not None, (MALFORMED_KINDS[i % len(MALFORMED_KINDS)], raw)
        assert b"\n" not in raw and b"\r" not in raw


def test_malformed_events_cover_every_kind():
    records = malformed_events(len(MALFORMED_KINDS), seed=5)
    kinds = dict(zip(MALFORMED_KINDS, records))
    assert set(kinds) >= {"truncated_json", "missing_event_id", "naive_timestamp", "wrong_types",
                          "binary_garbage", "avro_unknown_schema"}
    assert touchpoint_problem(kinds["truncated_json"]) == "not JSON"
    assert touchpoint_problem(kinds["missing_event_id"]) == "missing event_id"
    assert "naive" in touchpoint_problem(kinds["naive_timestamp"])
    assert touchpoint_problem(kinds["wrong_types"]) not in (None, "not JSON")
    assert touchpoint_problem(kinds["empty_event_id"]) == "event_id is not a non-empty string"
    assert kinds["empty"] == b""
    # Confluent wire format: magic byte 0, then a 4-byte schema id that nobody registered
    avro = kinds["avro_unknown_schema"]
    assert avro[0] == 0 and len(avro) > 5
    assert int.from_bytes(avro[1:5], "big") not in _registered_schema_ids()
    garbage = kinds["binary_garbage"]
    assert garbage[:1] not in (b"{", b"[", b"\x00")


def test_malformed_events_are_deterministic():
    assert malformed_events(25, seed=1) == malformed_events(25, seed=1)
    assert malformed_events(25, seed=1) != malformed_events(25, seed=2)
    assert malformed_events(0, seed=1) == []
    with pytest.raises(ValueError):
        malformed_events(-1, seed=1)


# -- outputs -------------------------------------------------------------------------------------
def test_write_jsonl_round_trip(tmp_path):
    events = martin_journey(MARTIN_START) + list(Population(50, seed=1, start=START).events())
    bad = malformed_events(10, seed=1)
    path = tmp_path / "out" / "touchpoints.jsonl"
    assert write_jsonl(events + bad, path) == len(events) + len(bad)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(events) + len(bad) + 1
    assert [orjson.loads(line) for line in lines[: len(events)]] == events
    assert lines[len(events):-1] == bad
    assert not [p for p in path.parent.iterdir() if p.name != path.name]   # no temp file left


def test_write_jsonl_refuses_a_multi_line_record_and_leaves_no_file(tmp_path):
    path = tmp_path / "x.jsonl"
    with pytest.raises(ValueError):
        write_jsonl([{"event_id": "a"}, b"two\nlines"], path)
    assert list(tmp_path.iterdir()) == []


def test_kafka_key_is_the_first_identifier():
    key = simulate.partition_key
    events = {e["event_id"]: e for e in martin_journey(MARTIN_START)}
    assert key(events["martin-01"], None) == b"c-9"          # raw e-mail stays out of the key
    assert key(events["martin-08"], None) == b"d-1"
    assert key(events["martin-11"], None) == b"L-77"
    assert key({"ids": {"email": "a@example.com"}}, None) == b"a@example.com"
    assert key(events["martin-08"], "event_id") == b"martin-08"
    assert key(events["martin-08"], "user") == b"u-42"
    assert key(events["martin-08"], "loyalty") is None
    assert key(b"\x00garbage", None) is None


class _FakeProducer:
    """Records what `produce` does with its producer; sends are acked at once."""

    def __init__(self, **options):
        self.options, self.sent, self.started, self.stopped = options, [], False, False

    async def start(self):
        self.started = True

    async def send(self, topic, value, key=None):
        self.sent.append((topic, value, key))
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    async def flush(self):
        pass

    async def stop(self):
        self.stopped = True


def _produce_with_fake(monkeypatch, *args, **kwargs) -> tuple[int, _FakeProducer]:
    from streams.kafka.clients import KafkaClients

    built = []

    def producer(self, **options):
        built.append(_FakeProducer(**self.options(**options)))
        return built[0]

    monkeypatch.setattr(KafkaClients, "producer", producer)
    sent = asyncio.run(simulate.produce(*args, **kwargs))
    assert len(built) == 1 and built[0].started and built[0].stopped
    return sent, built[0]


def test_produce_builds_its_producer_with_the_kafka_client_factory(monkeypatch):
    events = martin_journey(MARTIN_START) + malformed_events(3, seed=1)
    sent, producer = _produce_with_fake(monkeypatch, events, "kafka://h1:9092,h2:9092/", "t",
                                        window=4)
    assert sent == len(events) == len(producer.sent)
    assert producer.options["bootstrap_servers"] == "h1:9092,h2:9092"
    assert producer.options["client_id"] == "parcours-simulate"
    assert producer.options["enable_idempotence"] is False and producer.options["acks"] == "all"
    assert "security_protocol" not in producer.options                 # PLAINTEXT by default
    assert [key for _, _, key in producer.sent] == [simulate.partition_key(e, None)
                                                    for e in events]
    assert producer.sent[0] == ("t", orjson.dumps(events[0]), b"c-9")


def test_produce_takes_the_security_of_clients_and_client_options(monkeypatch):
    from streams.kafka.clients import KafkaClients
    from streams.kafka.security import KafkaSecurity

    security = KafkaSecurity(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-256",
                             username="sim", password="secret")
    clients = KafkaClients("kafka://broker:9093", security)
    events = martin_journey(MARTIN_START)
    _, producer = _produce_with_fake(monkeypatch, events, clients, "t")
    assert producer.options["bootstrap_servers"] == "broker:9093"
    assert producer.options["security_protocol"] == "SASL_PLAINTEXT"
    assert producer.options["sasl_plain_username"] == "sim"
    _, producer = _produce_with_fake(monkeypatch, events, "broker:9093", "t",
                                     client_options={"security_protocol": "SSL"})
    assert producer.options["security_protocol"] == "SSL"


def test_module_imports_without_kafka():
    code = ("import sys; sys.modules['aiokafka'] = None; import streams.simulate as s; "
            "print(len(s.martin_journey(__import__('datetime').datetime(2026, 11, 20))), "
            "'streams.kafka.clients' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == "11 False"


@pytest.mark.e2e
def test_produce_sends_every_event_keyed(kafka):
    from aiokafka import AIOKafkaConsumer

    topic = "simulate.test"
    kafka.create_topics({topic: 3})
    events = martin_journey(MARTIN_START) + list(Population(300, seed=2, start=START).events())
    bad = malformed_events(5, seed=2)

    async def run() -> tuple[int, list]:
        sent = await simulate.produce(events + bad, kafka.url, topic)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                                    auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        records: list = []
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(records) < sent and asyncio.get_running_loop().time() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        finally:
            await consumer.stop()
        return sent, records

    sent, records = asyncio.run(run())
    assert sent == len(events) + len(bad)
    assert len(records) == sent
    by_value = {r.value: r for r in records}
    for event in events:
        record = by_value[orjson.dumps(event)]
        assert record.key == simulate.partition_key(event, None)
    partitions_of_cookie = defaultdict(set)
    for record in records:
        if record.key:
            partitions_of_cookie[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions_of_cookie.values())
    assert len({r.partition for r in records}) == 3
