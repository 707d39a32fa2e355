"""The ingest shell with a schema registry (streams/worker/writer_schemas.py, Shell.ingest): a
batch's ids resolved from the STAND-IN registry of tests/schema_registry.py, refused and unknown
writers dead-lettered with their reasons, and an outage waited out: no record lost or
dead-lettered, one warning, the failing gauge and the error counter."""
from __future__ import annotations

import asyncio
import copy
import io
import logging
import struct
from types import SimpleNamespace

import fastavro
import orjson
import pytest

from schemas import registry
from schemas.confluent.client import RegistryClient
from schemas.confluent.settings import RegistrySettings
from schemas.confluent.writers import WriterCache
from streams.config import Topics
from streams.worker import metrics
from streams.worker.shell import Shell
from streams.worker.writer_schemas import WriterSchemas
from tests.schema_registry import StandInRegistry
from tests.unit.worker.recording import RecordingProducer

NOW_MS = 1_795_200_000_000
EVOLVED = {**registry.schema_json("touchpoint"), "namespace": "com.acme.events"}
EVOLVED["fields"] = [*EVOLVED["fields"], {"name": "tenant", "type": "string", "default": "-"}]
RENAMED = {**registry.schema_json("touchpoint"), "name": "PageView"}


def _framed(doc: dict, sid: int, event_id: str) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">BI", 0, sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(doc)), {
        "event_id": event_id, "event_time": NOW_MS, "type": "page_view", "channel": "web",
        "ids": {"cookie": f"c-{event_id}"}, "tenant": "acme"})
    return buf.getvalue()


def _message(value: bytes, offset: int):
    return SimpleNamespace(topic="touchpoints", partition=0, offset=offset, value=value)


def _gauge() -> float:
    return metrics.SCHEMA_REGISTRY_FAILING._value.get()


def _errors() -> float:
    return metrics.SCHEMA_REGISTRY_ERRORS.labels("schema")._value.get()


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stand_in():
    with StandInRegistry() as stand_in:
        yield stand_in


def _shell(url: str, clock: Clock, sleep=None) -> tuple[Shell, RecordingProducer]:
    async def no_wait(delay):
        clock.sleeps.append(delay)
        clock.now += delay
        await asyncio.sleep(0)

    schemas = WriterSchemas(RegistryClient(RegistrySettings(url, timeout_s=2)), WriterCache(60),
                            clock=clock, sleep=sleep or no_wait)
    producer = RecordingProducer()
    return Shell(Topics(), producer, writer_schemas=schemas), producer


def _outputs(producer: RecordingProducer, topic: str) -> list:
    found = []
    for t, _key, value in producer.records:
        if t == topic:
            items = orjson.loads(value)
            found += items if isinstance(items, list) else [items]
    return found


def test_a_batch_is_read_with_the_registrys_writers_and_the_refused_dead_lettered(stand_in):
    good_id = stand_in.register("touchpoints-value", EVOLVED)
    renamed_id = stand_in.register("com.acme.PageView", RENAMED)
    clock = Clock()
    shell, producer = _shell(stand_in.url, clock)
    messages = [_message(_framed(EVOLVED, good_id, "e-1"), 0),
                _message(_framed(RENAMED, renamed_id, "e-2"), 1),
                _message(_framed(EVOLVED, 4242, "e-3"), 2),
                _message(_framed(EVOLVED, good_id, "e-4"), 3),
                _message(orjson.dumps({"event_id": "e-5", "event_time": NOW_MS, "type": "click"}),
                         4)]

    async def run():
        await shell.ingest(messages)
        await shell.ingest(messages[:1])  # the cache answers: no new request
        await shell.writer_schemas.stop()

    asyncio.run(run())
    forwarded = [tp["event_id"] for tp in _outputs(producer, Topics().stitch) if "event_id" in tp]
    assert forwarded == ["e-1", "e-4", "e-5", "e-1"]
    dead = _outputs(producer, Topics().dead_letter)
    assert [(d["offset"], d["error"]) for d in dead] == [(1, "format"), (2, "format")]
    assert dead[0]["reason"].startswith(f"schema id {renamed_id} (parcours.PageView) cannot be "
                                        "read as a touchpoint: record name changed")
    assert dead[1]["reason"] == ("schema id 4242 is not in the schema registry "
                                 "(HTTP 404, error_code 40403)")
    gets = [path for method, path in stand_in.requests if method == "GET"]
    assert sorted(gets) == sorted(f"/schemas/ids/{i}" for i in (good_id, renamed_id, 4242))


@pytest.mark.parametrize("outage", ["503", "refused"])
def test_an_outage_holds_the_batch_until_the_registry_answers(stand_in, caplog, outage):
    sid = stand_in.register("touchpoints-value", EVOLVED)
    clock = Clock()
    errors_before = _errors()

    async def sleep(delay):  # the registry comes back after the third retry
        clock.sleeps.append(delay)
        clock.now += delay
        if len(clock.sleeps) == 3:
            stand_in.fail_with(None)
            stand_in.accept()
        await asyncio.sleep(0)

    shell, producer = _shell(stand_in.url, clock, sleep)
    gauge_while_failing = []
    real_sleep = shell.writer_schemas.sleep

    async def watching(delay):
        gauge_while_failing.append(_gauge())
        await real_sleep(delay)

    shell.writer_schemas.sleep = watching
    stand_in.fail_with(503) if outage == "503" else stand_in.refuse()
    messages = [_message(_framed(EVOLVED, sid, f"e-{i}"), i) for i in range(3)]
    with caplog.at_level(logging.WARNING, logger="parcours.schema_registry"):
        asyncio.run(shell.ingest(messages))
        asyncio.run(shell.writer_schemas.stop())
    forwarded = [tp["event_id"] for tp in _outputs(producer, Topics().stitch) if "event_id" in tp]
    assert forwarded == ["e-0", "e-1", "e-2"] and _outputs(producer, Topics().dead_letter) == []
    assert clock.sleeps == [0.5, 1.0, 2.0]  # backoff, doubling
    assert gauge_while_failing == [1, 1, 1] and _gauge() == 0
    assert _errors() - errors_before == 3
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings  # one when it fails, one when it is back
    assert warnings[0].startswith(f"schema registry at {stand_in.url} is unavailable")
    assert "answers again after 3.5 s" in warnings[1]
    assert not any("e-0" in w or "c-e" in w for w in warnings)  # no record in the logs


def test_without_a_registry_the_shell_reads_local_ids_as_before():
    from schemas.codec import encode_avro

    producer = RecordingProducer()
    shell = Shell(Topics(), producer)
    raw = encode_avro("touchpoint", {"event_id": "e-1", "event_time": NOW_MS, "type": "click"})
    asyncio.run(shell.ingest([_message(raw, 0)]))
    assert [tp["event_id"] for tp in _outputs(producer, Topics().stitch)
            if "event_id" in tp] == ["e-1"]


def test_a_batch_of_hostile_unknown_ids_asks_the_registry_once_per_id(stand_in):
    clock = Clock()
    shell, producer = _shell(stand_in.url, clock)
    hostile = [_message(struct.pack(">BI", 0, 5000 + i) + b"\x00", i) for i in range(40)]

    asyncio.run(shell.ingest(hostile))
    dead = _outputs(producer, "touchpoints.dead-letter")
    assert len(dead) == 40 and all("not in the schema registry" in d["reason"] for d in dead)
    asked = [path for method, path in stand_in.requests if path.startswith("/schemas/ids/")]
    assert sorted(asked) == sorted(f"/schemas/ids/{5000 + i}" for i in range(40))  # once each
