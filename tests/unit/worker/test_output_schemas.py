"""Avro outputs (PARCOURS_OUTPUT_FORMAT=avro, streams/worker/output_schemas.py): every record a
replayed simulation puts on a public topic fits its .avsc, the topic values are Confluent Avro
while the ClickHouse sink blocks stay JSON, and the output schemas are registered under
`<topic>-value` in the STAND-IN registry of tests/schema_registry.py."""
from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timezone

import orjson
import pytest

from schemas import registry
from schemas.codec import decode_avro
from schemas.confluent.client import RegistryClient
from schemas.confluent.settings import RegistrySettings
from streams import simulate
from streams.config import Topics
from streams.ingest import OFFSET, SOURCE, ingest_batch
from streams.pipeline import Pipeline
from streams.worker import sink_blocks
from streams.worker.output_schemas import (
    SCHEMA_OF,
    OutputEncoder,
    OutputSchemaError,
    register_outputs,
    topic_schemas,
    with_extra,
)
from streams.worker.outputs import journey_records
from tests.schema_registry import StandInRegistry

START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()


@pytest.fixture(scope="module")
def replayed():
    """A replayed simulation's outputs (the Martin journey, a population, malformed records)."""
    events = simulate.in_time_order(simulate.martin_journey(START),
                                    simulate.Population(profiles=150, seed=11,
                                                        start=START).events())
    raws = [(orjson.dumps(e), "touchpoints", 0, i) for i, e in enumerate(events)]
    raws += [(m, "touchpoints", 0, 10**6 + i)
             for i, m in enumerate(simulate.malformed_events(20, seed=3))]
    good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET)
    pipeline = Pipeline()
    out = pipeline.process(good)
    out.extend(pipeline.end_of_input())
    return out, dead


def test_every_output_of_a_replayed_simulation_fits_its_schema(replayed):
    out, dead = replayed
    encoder = OutputEncoder(avro=True)
    seen = {}
    for kind, name in SCHEMA_OF.items():
        items = dead if kind == "dead_letters" else getattr(out, kind)
        seen[kind] = len(items)
        schema_fields = {f["name"] for f in registry.schema_json(name)["fields"]}
        for item in items:
            assert set(item) <= schema_fields, (kind, set(item) - schema_fields)  # nothing lost
            got_name, back = decode_avro(encoder.encode(kind, "t", item))
            assert got_name == name
            if kind == "dead_letters":
                item = {**item, "original": base64.b64decode(item["original"])}
            if kind == "stitched":
                back = _with_extra_inline(back)
            assert _present(back) == _present(item), kind
    assert all(seen[k] for k in SCHEMA_OF if k != "late"), seen  # each kind was really tried
    assert any(json.loads(with_extra(tp)["properties"]["extra"]) for tp in out.stitched
               if "extra" in with_extra(tp)["properties"])  # the case occurs


def _present(value):
    """The value without None fields (Avro gives every field of a record, None when absent)."""
    if isinstance(value, dict):
        return {k: _present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_present(v) for v in value]
    return value


def _with_extra_inline(tp: dict) -> dict:
    """A stitched touchpoint read back, its context/properties `extra` JSON put back inline."""
    for part in ("context", "properties"):
        record = dict(tp[part])
        extra = record.pop("extra", None)
        tp = {**tp, part: {**record, **(json.loads(extra) if extra else {})}}
    return tp


def test_avro_topic_values_and_json_sink_blocks(replayed):
    out, _dead = replayed
    ids = {TOPICS.stitched: 201, TOPICS.credit: 205}
    schemas = {TOPICS.stitched: "stitched_touchpoint", TOPICS.credit: "attribution_credit"}
    json_records, json_sink = journey_records(out, TOPICS, 1)
    records, sink = journey_records(out, TOPICS, 1,
                                    encoder=OutputEncoder(ids, avro=True, schemas=schemas))
    assert sink == json_sink  # the sink stage reads the same JSON either way
    assert [(t, k) for t, k, _v in records] == [(t, k) for t, k, _v in json_records]
    for (topic, _key, value), (_t, _k, json_value) in zip(records, json_records):
        assert value[0] == 0 and json_value[:1] == b"{"
        sid = int.from_bytes(value[1:5], "big")
        assert sid == ids.get(topic, registry.schema_id(_schema_of(topic)))
    block_kinds = {sink_blocks.decode(block)["kind"] for _t, _k, block in sink}
    assert {"stitched", "credits", "triggers"} <= block_kinds


def _schema_of(topic: str) -> str:
    return topic_schemas(TOPICS, [topic.removeprefix(TOPICS.triggers_prefix)])[topic]


def test_output_schemas_are_registered_under_topic_value_subjects():
    schemas = topic_schemas(TOPICS, ["push", "email"])
    assert schemas[TOPICS.trigger_topic("push")] == "trigger"
    with StandInRegistry() as stand_in:
        async def run(auto_register: bool):
            client = RegistryClient(RegistrySettings(stand_in.url))
            try:
                return await register_outputs(client, schemas, auto_register=auto_register)
            finally:
                await client.close()

        ids = asyncio.run(run(True))
        assert set(stand_in.subjects) == {f"{topic}-value" for topic in schemas}
        assert ids[TOPICS.trigger_topic("push")] == ids[TOPICS.trigger_topic("email")]  # same
        assert len(set(ids.values())) == len(set(schemas.values()))
        assert asyncio.run(run(False)) == ids  # looked up: the same ids
        schemas["triggers.sms"] = "trigger"
        with pytest.raises(OutputSchemaError) as info:
            asyncio.run(run(False))
        assert "schema trigger is not registered under subject 'triggers.sms-value'" in str(
            info.value) and "\n" not in str(info.value)


def test_an_unavailable_registry_at_start_is_one_startup_error():
    with StandInRegistry() as stand_in:
        stand_in.fail_with(503)
        sleeps = []

        async def run():
            client = RegistryClient(RegistrySettings(stand_in.url))
            now = [0.0]

            async def sleep(delay):
                sleeps.append(delay)
                now[0] += delay

            try:
                return await register_outputs(client, {"identity": "identity_event"}, wait_s=5,
                                              sleep=sleep, clock=lambda: now[0])
            finally:
                await client.close()

        with pytest.raises(OutputSchemaError, match="cannot register the output schemas: "
                                                    "schema registry at .* HTTP 503"):
            asyncio.run(run())
        assert sleeps == [0.5, 1.0, 2.0]


def test_sink_stage_dead_letters_follow_the_output_format():
    from types import SimpleNamespace

    from streams.worker.sink_stage import SinkStage

    stage = SinkStage.__new__(SinkStage)
    stage.topics, stage.encoder = TOPICS, None
    record = SimpleNamespace(topic=TOPICS.sink, partition=0, offset=7)
    _topic, _key, value = stage._dead_letter(record, "sink_row", "bad row", b"\xff{")
    assert orjson.loads(value)["error"] == "sink_row"
    stage.encoder = OutputEncoder(avro=True)
    _topic, _key, value = stage._dead_letter(record, "sink_row", "bad row", b"\xff{")
    name, back = decode_avro(value)
    assert name == "dead_letter" and back["original"] == b"\xff{" and back["offset"] == 7
