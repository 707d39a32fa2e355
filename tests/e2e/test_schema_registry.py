"""A Confluent Schema Registry, end to end: confluent-kafka's own AvroSerializer and Producer write
touchpoints to the embedded broker, and one real `parcours worker` process reads them through
the registry, with PARCOURS_OUTPUT_FORMAT=avro.

The registry is the STAND-IN of tests/schema_registry.py (an aiohttp server implementing the
documented REST subset): no registry server installs on this machine (no Docker engine for
confluentinc/cp-schema-registry). Everything else is real: librdkafka producing, confluent-kafka's
schema-registry client registering and fetching, the worker process, its Avro outputs read back
with confluent-kafka's AvroDeserializer.

Checked on one worker: an evolved writer (another namespace, an extra field, a field missing
with its default) is read into the contract; an incompatible writer (another record name, under
RecordNameStrategy as its producer registered it) and an id the registry does not know go to the
dead-letter topic with their reasons; the registry refusing connections for a while loses and
dead-letters nothing (the records arrive once it is back); the output schemas are registered under
`<topic>-value`, and the outputs decode with them.
"""
from __future__ import annotations

import asyncio
import copy
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer

from schemas import registry
from schemas.codec import encode_avro
from streams.config import Topics
from streams.embedded.broker import free_port
from streams.embedded.worker_process import WorkerProcess
from streams.worker.app import trigger_channels
from tests.schema_registry import StandInRegistry

pytestmark = pytest.mark.e2e
TOPICS = Topics()
USER, PASSWORD = "parcours", "s3cret:pw"
PER_WRITER = 20
CLOSING = 5


def _evolved() -> dict:
    """The contract as another team evolved it: own namespace, an extra field, no `campaign`."""
    doc = copy.deepcopy(registry.schema_json("touchpoint"))
    doc["namespace"] = "com.acme.events"
    doc["fields"] = [f for f in doc["fields"] if f["name"] != "campaign"]
    doc["fields"].append({"name": "tenant", "type": "string", "default": "-"})
    return doc


def _reordered() -> dict:
    """Fields in another order, and `context.lat` an int (Avro promotes it to double)."""
    doc = copy.deepcopy(registry.schema_json("touchpoint"))
    doc["fields"].reverse()
    context = next(f for f in doc["fields"] if f["name"] == "context")["type"][1]
    next(f for f in context["fields"] if f["name"] == "lat")["type"] = ["null", "int"]
    return doc


def _event(event_id: str, at_ms: int, **extra) -> dict:
    return {"event_id": event_id, "event_time": at_ms, "type": "page_view", "channel": "web",
            "publisher": None, "ids": {"cookie": f"c-{event_id}"},
            "context": {"url": "https://brand.example/suv", "lat": 48},
            "properties": None, **extra}


def _serializer(client, doc: dict, *, record_subject: bool = False):
    from confluent_kafka.schema_registry import record_subject_name_strategy
    from confluent_kafka.schema_registry.avro import AvroSerializer

    conf = {"auto.register.schemas": True}
    if record_subject:
        conf["subject.name.strategy"] = record_subject_name_strategy
    return AvroSerializer(client, orjson.dumps(doc).decode(), conf=conf)


def _serialized(serializer, events: list[dict]) -> list[bytes]:
    from confluent_kafka.serialization import MessageField, SerializationContext

    ctx = SerializationContext(TOPICS.touchpoints, MessageField.VALUE)
    return [serializer(event, ctx) for event in events]


def _produce(bootstrap: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": False,
                         "linger.ms": 5})
    for value in values:
        producer.produce(TOPICS.touchpoints, value, partition=0)
    assert producer.flush(30) == 0


async def _forwarded(bootstrap: str, want: set[str], timeout: float, alive) -> set[str]:
    """Event ids ingest forwarded to parcours.stitch (JSON arrays), until `want` are there."""
    consumer = AIOKafkaConsumer(TOPICS.stitch, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while not want <= seen:
            if time.monotonic() > deadline or not alive():
                return seen
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for record in records:
                    if record.value is not None:
                        seen |= {i["event_id"] for i in orjson.loads(record.value)
                                 if "event_id" in i}
        return seen
    finally:
        await consumer.stop()


def _read_avro(bootstrap: str, client, topic: str, until, timeout: float) -> list[dict]:
    """Records of `topic` decoded by confluent-kafka's AvroDeserializer, until `until(records)`."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    deserializer = AvroDeserializer(client)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group join: quicker
    records: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.value() is None:
                continue
            assert message.value()[0] == 0  # Confluent wire format, not JSON
            records.append(deserializer(message.value(),
                                        SerializationContext(topic, MessageField.VALUE)))
        return records
    finally:
        consumer.close()


def test_the_worker_reads_through_the_registry_and_writes_avro(kafka, tmp_path, ch_url):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.preferences: 1, TOPICS.stitch: 1})
    two_days_ago = int(time.time() * 1000) - 2 * 86_400_000
    with StandInRegistry(username=USER, password=PASSWORD) as stand_in:
        client = SchemaRegistryClient({"url": stand_in.url,
                                       "basic.auth.user.info": f"{USER}:{PASSWORD}"})
        workers: list[WorkerProcess] = []

        def start_worker() -> WorkerProcess:
            n = len(workers)
            worker = WorkerProcess(kafka.url, ch_url(f"ch{n}"), tmp_path / f"data{n}",
                                   app_id="e2e-registry", log_path=tmp_path / f"worker{n}.log",
                                   metrics_port=free_port(),
                                   extra_env={"PARCOURS_SCHEMA_REGISTRY_URL": stand_in.url,
                                              "PARCOURS_SCHEMA_REGISTRY_USERNAME": USER,
                                              "PARCOURS_SCHEMA_REGISTRY_PASSWORD": PASSWORD,
                                              "PARCOURS_OUTPUT_FORMAT": "avro",
                                              "PARCOURS_SINK_STAGE": "off"})
            workers.append(worker.start())
            return worker

        evolved = [_event(f"evolved-{i}", two_days_ago + i * 1000, tenant="acme")
                   for i in range(PER_WRITER)]
        renamed_doc = {**registry.schema_json("touchpoint"), "name": "PageView",
                       "namespace": "com.acme"}
        incompatible = _serialized(_serializer(client, renamed_doc, record_subject=True),
                                   [_event("renamed-0", two_days_ago)])
        local_id = encode_avro("touchpoint", _event("local-id-0", two_days_ago))  # id 1
        # serialised (and so registered) now; produced while the registry refuses connections
        late = [_event(f"outage-{i}", two_days_ago + 60_000 + i * 1000, context={"lat": 45})
                for i in range(PER_WRITER)]
        outage = _serialized(_serializer(client, _reordered()), late)
        try:
            _check(kafka, stand_in, client, start_worker, evolved, incompatible, local_id,
                   outage, late)
        except (AssertionError, TimeoutError) as exc:
            logs = "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(40)}" for w in workers)
            raise AssertionError(f"{exc}\n{logs}") from exc
        finally:
            for worker in workers:  # no sink stage here (PARCOURS_SINK_STAGE=off): no drain
                worker.stop(drain=False)
        assert workers[-1].proc.returncode in (0, -15), workers[-1].log_tail(60)


def _check(kafka, stand_in, client, start_worker, evolved, incompatible, local_id, outage,
           late):
    from streams.moments.rules.loader import load_default

    worker = start_worker()
    # 1. an evolved writer is read; the output schemas are registered under <topic>-value
    outputs = [TOPICS.stitched, TOPICS.identity, TOPICS.credit, TOPICS.suppressions, TOPICS.late,
               TOPICS.audiences, TOPICS.dead_letter]
    outputs += [TOPICS.trigger_topic(ch) for ch in trigger_channels(load_default())]
    _produce(kafka.bootstrap, _serialized(_serializer(client, _evolved()), evolved)
             + incompatible + [local_id])
    ids = {f"evolved-{i}" for i in range(len(evolved))}
    seen = asyncio.run(_forwarded(kafka.bootstrap, ids, 60, worker.alive))
    assert ids <= seen, f"{len(ids & seen)} of {len(ids)} evolved records forwarded"
    assert {f"{t}-value" for t in outputs} <= set(stand_in.subjects)
    assert not seen & {"renamed-0", "local-id-0"}

    # 2. the registry refuses connections: the new writer's records wait; the worker is killed
    #    (kill -9) meanwhile, and its successor forwards them all once the registry is back
    stand_in.refuse()
    _produce(kafka.bootstrap, outage)
    deadline = time.monotonic() + 20
    while worker.metric("parcours_schema_registry_failing") != 1:
        assert time.monotonic() < deadline, "the worker never noticed the outage"
        time.sleep(0.2)
    held = {f"outage-{i}" for i in range(len(late))}
    assert not asyncio.run(_forwarded(kafka.bootstrap, held, 2, worker.alive)) & held
    log = worker.log_path.read_text()
    assert log.count(f"schema registry at {stand_in.url} is unavailable") == 1
    assert PASSWORD not in log and "c-outage" not in log  # the URL, never a record
    worker.kill()
    stand_in.accept()
    worker = start_worker()
    seen = asyncio.run(_forwarded(kafka.bootstrap, held, 60, worker.alive))
    assert held <= seen, f"{len(held & seen)} of {len(held)} records after the outage"

    # 3. dead letters: only the incompatible writer and the unknown id, Avro with their reasons
    #    (each possibly twice: the first worker's last batch before the kill may be read again)
    dead = _read_avro(kafka.bootstrap, client, TOPICS.dead_letter, lambda r: False, 3)
    reasons = sorted({(d["offset"], d["error"], d["reason"]) for d in dead})
    assert len(reasons) == 2, reasons  # produced in this order: the renamed writer, then id 1
    assert reasons[0][1] == reasons[1][1] == "format"
    assert "cannot be read as a touchpoint: record name changed" in reasons[0][2]
    assert reasons[0][2].startswith("schema id ") and "(com.acme.PageView)" in reasons[0][2]
    assert reasons[1][2].startswith("schema id 1 is not in the schema registry")

    # 4. the stitched touchpoints (released once closing events move the watermark past them)
    #    read back with confluent-kafka's AvroDeserializer and the registered schema
    now = int(time.time() * 1000)
    _produce(kafka.bootstrap, [orjson.dumps(_event(f"closing-{i}", now, context=None))
                               for i in range(CLOSING)])
    want = ids | held
    stitched = _read_avro(kafka.bootstrap, client, TOPICS.stitched,
                          lambda r: want <= {tp["event_id"] for tp in r}, 60)
    by_id = {tp["event_id"]: tp for tp in stitched}
    assert want <= set(by_id), f"{len(want & set(by_id))} of {len(want)} stitched"
    first = by_id["evolved-0"]
    assert first["campaign"] is None and first["channel"] == "web"  # default for a missing field
    assert first["context"]["url"] == "https://brand.example/suv" and first["profile_id"]
    assert by_id["outage-3"]["context"]["lat"] == 45.0  # int promoted to double
    assert first["ids"] == {"cookie": "c-evolved-0"}
