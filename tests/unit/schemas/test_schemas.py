"""schemas.registry and the .avsc contracts: ids, parsing, and compatibility guards."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import avro.schema
import orjson
import pytest

from schemas import registry
from schemas.codec import DecodeError, decode_avro, encode_avro
from schemas.registry import IncompatibleSchema, UnknownSchema, check_compatible
from streams.ingest.normalise import dead_letter, decode_and_normalise
from tests.unit.schemas.test_codec import EXAMPLE

SCHEMA_DIR = Path(registry.__file__).parent
TOUCHPOINT_V1 = Path(__file__).resolve().parents[2] / "data" / "touchpoint.v1.avsc"

DOCUMENTED_IDS = {"touchpoint": 1, "stitched_touchpoint": 2, "dead_letter": 3, "identity_event": 4,
                  "attribution_credit": 5, "trigger": 6, "suppression": 7, "late_event": 8,
                  "audience_record": 9}


def test_schema_ids_are_the_documented_table():
    assert {name: registry.schema_id(name) for name in registry.names()} == DOCUMENTED_IDS
    assert registry.names() == tuple(DOCUMENTED_IDS)
    for name, sid in DOCUMENTED_IDS.items():
        assert registry.name_for_id(sid) == name
    on_disk = json.loads((SCHEMA_DIR / "registry.json").read_text())["schemas"]
    assert on_disk == DOCUMENTED_IDS


def test_every_avsc_file_is_registered_and_strictly_valid():
    assert {p.stem for p in SCHEMA_DIR.glob("*.avsc")} == set(DOCUMENTED_IDS)
    for name in registry.names():
        text = (SCHEMA_DIR / f"{name}.avsc").read_text()
        parsed = avro.schema.parse(text)  # the reference implementation: names, defaults
        assert parsed.namespace == "parcours"
        assert registry.schema_json(name) == json.loads(text)


def test_unknown_names_and_ids_have_readable_errors():
    with pytest.raises(UnknownSchema, match="^unknown schema 'touchpont' \\(known: touchpoint, "):
        registry.schema("touchpont")
    with pytest.raises(UnknownSchema, match="^unknown schema id 99$"):
        registry.name_for_id(99)
    with pytest.raises(UnknownSchema):
        registry.schema_id("nope")


def test_parsed_schemas_are_shared_and_reader_schemas_drop_logical_types():
    assert registry.schema("stitched_touchpoint") is registry.schema("stitched_touchpoint")
    assert "logicalType" in json.dumps(registry.schema_json("stitched_touchpoint"))
    assert "timestamp-millis" not in repr(registry.reader_schema("stitched_touchpoint"))
    schema_copy = registry.schema_json("touchpoint")
    schema_copy["fields"].clear()
    assert registry.schema_json("touchpoint")["fields"]  # callers get a copy


def test_sample_records_cover_every_union_branch():
    samples = registry.sample_records(registry.schema_json("touchpoint"))
    assert {type(s["event_time"]) for s in samples} == {int, str}
    assert any(s["context"] is None for s in samples)
    assert any(isinstance(s["context"], dict) and s["context"]["lat"] is not None for s in samples)
    assert any(s["ids"] == {} for s in samples) and any(s["ids"] for s in samples)


# --- the contract guard ---------------------------------------------------------------------------

def test_current_touchpoint_reads_data_written_with_v1():
    """The contract of DESIGN.md: producers built against v1 must keep working. If this fails, the
    change to schemas/touchpoint.avsc is breaking: make new fields optional with a default."""
    check_compatible(TOUCHPOINT_V1.read_text(), (SCHEMA_DIR / "touchpoint.avsc").read_text())


@pytest.mark.parametrize("name", ["trigger", "suppression"])
def test_triggers_and_suppressions_with_experiment_and_arm_read_what_was_written_before(name):
    """Issue 15 added `experiment` and `arm` (default ""): a consumer on the new contract still
    reads the records written before them (tests/data/<name>.v2.avsc, the contract until then)."""
    data = Path(__file__).resolve().parents[2] / "data"
    check_compatible((data / f"{name}.v2.avsc").read_text(),
                     (SCHEMA_DIR / f"{name}.avsc").read_text())


def test_stitched_touchpoint_with_extra_reads_what_was_written_before():
    """`context.extra` and `properties.extra` (the free-form keys, as JSON text, that Avro outputs
    would otherwise drop) joined stitched_touchpoint.avsc with Avro outputs: optional, default
    null, so records written with tests/data/stitched_touchpoint.v1.avsc still read."""
    data = Path(__file__).resolve().parents[2] / "data"
    check_compatible((data / "stitched_touchpoint.v1.avsc").read_text(),
                     (SCHEMA_DIR / "stitched_touchpoint.avsc").read_text())


def test_credit_with_touchpoint_time_reads_what_was_written_before():
    """`touchpoint_time` (the credited touch's event time, which the credit rows always had) joined
    attribution_credit.avsc when the topic could be written in Avro: optional, default null, so
    records written with tests/data/attribution_credit.v1.avsc still read."""
    data = Path(__file__).resolve().parents[2] / "data"
    check_compatible((data / "attribution_credit.v1.avsc").read_text(),
                     (SCHEMA_DIR / "attribution_credit.avsc").read_text())


@pytest.mark.parametrize("name", list(DOCUMENTED_IDS))
def test_every_schema_is_compatible_with_itself(name):
    check_compatible(registry.schema_json(name), registry.schema_json(name))


def _touchpoint_with(change) -> dict:
    doc = json.loads(TOUCHPOINT_V1.read_text())
    change(doc)
    return doc


def _field(doc: dict, name: str) -> dict:
    return next(f for f in doc["fields"] if f["name"] == name)


def test_compatible_evolutions_pass():
    def add_optional(doc):
        doc["fields"].append({"name": "consent_id", "type": ["null", "string"], "default": None})

    def widen_max_per_day(doc):  # int -> long is an Avro promotion
        props = _field(doc, "properties")["type"][1]
        _field(props, "max_per_day")["type"] = ["null", "long"]

    def drop_optional(doc):  # the reader ignores what it no longer knows
        doc["fields"] = [f for f in doc["fields"] if f["name"] != "publisher"]

    for change in (add_optional, widen_max_per_day, drop_optional):
        check_compatible(TOUCHPOINT_V1.read_text(), _touchpoint_with(change))


@pytest.mark.parametrize("change,message", [
    (lambda d: d["fields"].append({"name": "tenant", "type": "string"}),
     "new field has no default (tenant) at /fields/9"),
    (lambda d: _field(d, "event_id").update(type="long"),
     "type changed incompatibly (reader type: long not compatible with writer type: string) "
     "at /fields/0/type"),
    (lambda d: _field(d, "event_time").update(type="long"), "type changed incompatibly"),
    (lambda d: _field(d, "ids").update(type={"type": "map", "values": "long"}),
     "type changed incompatibly"),
    (lambda d: d.update(name="RawTouchpoint"), "record name changed"),
])
def test_breaking_evolutions_are_caught(change, message):
    with pytest.raises(IncompatibleSchema) as info:
        check_compatible(TOUCHPOINT_V1.read_text(), _touchpoint_with(change))
    assert str(info.value).startswith("new schema cannot read old data: ")
    assert message in str(info.value)


def test_invalid_schema_text_is_reported():
    with pytest.raises(IncompatibleSchema, match="^new schema is not valid Avro"):
        check_compatible(TOUCHPOINT_V1.read_text(),
                         {"type": "record", "name": "T", "fields": [{"name": "x", "type": "nope"}]})


# --- the output schemas fit what the code produces ------------------------------------------------

def test_stitched_touchpoint_schema_holds_a_normalised_touchpoint():
    stitched = {**decode_and_normalise(orjson.dumps(EXAMPLE)), "profile_id": "p-1"}
    name, back = decode_avro(encode_avro("stitched_touchpoint", stitched))
    assert name == "stitched_touchpoint"
    assert {k: v for k, v in back.items() if k not in ("context", "properties")} == \
        {k: v for k, v in stitched.items() if k not in ("context", "properties")}
    assert {k: v for k, v in back["context"].items() if v is not None} == stitched["context"]
    assert {k: v for k, v in back["properties"].items() if v is not None} == stitched["properties"]


def test_dead_letter_schema_holds_a_dead_letter():
    dl = dead_letter(b"\x7f", DecodeError("format", "unknown wire format: first byte 0x7f"),
                     now_ms=1_795_200_000_000)
    avro_form = {**dl, "original": base64.b64decode(dl["original"])}
    assert decode_avro(encode_avro("dead_letter", avro_form)) == ("dead_letter", avro_form)


def test_sample_read_is_a_second_proof_independent_of_the_avro_checker(monkeypatch):
    from avro import compatibility

    monkeypatch.setattr(compatibility.ReaderWriterCompatibilityChecker, "get_compatibility",
                        lambda self, reader, writer: compatibility.CompatibleResult)
    broken = _touchpoint_with(lambda d: _field(d, "event_id").update(type="long"))
    with pytest.raises(IncompatibleSchema, match="^sample record 0 written with the old schema "
                                                 "does not read with the new one: "):
        check_compatible(TOUCHPOINT_V1.read_text(), broken)
