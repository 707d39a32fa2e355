"""schemas.codec: wire formats, the Touchpoint contract check, and its agreement with fastavro."""
from __future__ import annotations

import base64
import copy
import io
import pickle
import struct

import fastavro
import orjson
import pytest
from fastavro.validation import validate as fastavro_validate
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas import codec, registry
from schemas.codec import (
    DEFAULT_MAX_BYTES,
    DecodeError,
    decode,
    decode_avro,
    encode_avro,
    encode_json,
)

# The worked example of DESIGN.md, verbatim.
EXAMPLE = {
    "event_id": "e-123", "event_time": "2026-11-20T08:15:00+01:00",
    "type": "price_view", "channel": "web", "campaign": "winter-suv",
    "publisher": "autonews.example",
    "ids": {"cookie": "c-9", "device": "d-1", "email": "martin@example.com", "user": "u-42",
            "loyalty": "L-77", "phone": "+33600000000"},
    "context": {"url": "https://brand.example/suv?utm_source=autonews&utm_medium=display",
                "referrer": "https://autonews.example/", "store_id": "paris-15", "lat": 48.84,
                "lon": 2.29, "beacon_id": "b-3", "tz": "Europe/Paris", "user_agent": "..."},
    "properties": {"product_id": "suv-x", "price": 32900.0, "revenue": 0.0, "currency": "EUR",
                   "order_id": None, "in_stock": True},
}


def variant(**changes) -> dict:
    record = copy.deepcopy(EXAMPLE)
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def confluent(schema_id: int, body: bytes) -> bytes:
    return struct.pack(">BI", 0, schema_id) + body


def without_nulls(d: dict | None) -> dict:
    return {k: v for k, v in (d or {}).items() if v is not None}


# --- happy paths ---------------------------------------------------------------------------------

def test_design_example_json_decodes_to_itself():
    assert decode(orjson.dumps(EXAMPLE)) == EXAMPLE


def test_json_with_leading_whitespace_and_unknown_fields():
    raw = b" \n\t" + orjson.dumps(variant(source_system="crm-7"))
    record = decode(raw)
    assert record["source_system"] == "crm-7"  # kept; normalise decides what goes on
    assert record["event_id"] == "e-123"


def test_design_example_avro_round_trip():
    raw = encode_avro("touchpoint", EXAMPLE)
    assert raw[0] == 0 and struct.unpack(">I", raw[1:5])[0] == 1
    record = decode(raw)
    # Avro fills every optional field of the nested records; the present values are the same.
    assert {k: v for k, v in record.items() if k not in ("context", "properties")} == \
        {k: v for k, v in EXAMPLE.items() if k not in ("context", "properties")}
    assert without_nulls(record["context"]) == without_nulls(EXAMPLE["context"])
    assert without_nulls(record["properties"]) == without_nulls(EXAMPLE["properties"])


def test_avro_with_epoch_millis_and_no_optional_parts():
    minimal = {"event_id": "e-1", "event_time": 1795158900000, "type": "app_open"}
    record = decode(encode_avro("touchpoint", minimal))
    assert record == {**minimal, "channel": None, "campaign": None, "publisher": None, "ids": {},
                      "context": None, "properties": None}


def test_encode_avro_with_explicit_schema_id_writes_it():
    raw = encode_avro("touchpoint", EXAMPLE, schema_id=100042)
    assert struct.unpack(">BI", raw[:5]) == (0, 100042)


@pytest.mark.parametrize("name", registry.names())
def test_encode_decode_avro_round_trip_for_every_schema(name):
    for value in registry.sample_records(registry.schema_json(name)):
        assert decode_avro(encode_avro(name, value)) == (name, value)


def test_decode_avro_returns_epoch_millis_not_datetime():
    credit = {"conversion_id": "e-9", "conversion_time": 1795158900000, "profile_id": "p-1",
              "model": "linear", "touchpoint_id": "e-1", "touchpoint_time": 1795158000000,
              "channel": "email", "campaign": None,
              "publisher": None, "credit": 0.25, "revenue_credit": 8225.0}
    name, value = decode_avro(encode_avro("attribution_credit", credit))
    assert name == "attribution_credit"
    assert value == credit and type(value["conversion_time"]) is int


def test_encode_avro_rejects_a_value_that_does_not_fit():
    with pytest.raises(ValueError, match="cannot encode as touchpoint"):
        encode_avro("touchpoint", {"event_id": "e-1", "type": "click"})  # no event_time


def test_encode_json_bytes_as_base64_and_str_keys_only():
    assert orjson.loads(encode_json({"original": b"\x00\xffab", "n": 1})) == \
        {"original": base64.b64encode(b"\x00\xffab").decode(), "n": 1}
    with pytest.raises(TypeError):
        encode_json({1: "non-str key"})
    with pytest.raises(TypeError):
        encode_json({"x": object()})
    assert decode(encode_json(EXAMPLE)) == EXAMPLE


def test_null_ids_are_dropped_without_mutating_the_input():
    record = variant(ids={"email": None, "cookie": "c-9"})
    assert decode(orjson.dumps(record))["ids"] == {"cookie": "c-9"}
    snapshot = copy.deepcopy(record)
    assert codec.validate_touchpoint(record)["ids"] == {"cookie": "c-9"}
    assert record == snapshot
    assert "ids" not in decode(orjson.dumps(variant(ids=None)))  # null ids = absent
    assert "ids" not in decode(orjson.dumps(variant(ids=...)))


# --- every class of bad input --------------------------------------------------------------------

TOUCHPOINT_AVRO = encode_avro("touchpoint", EXAMPLE)

BAD_INPUTS = [
    # (id, raw bytes, kind, exact reason)
    ("bad json", b'{"event_id": x}', "decode",
     "invalid JSON at byte 13: unexpected character, expected a JSON value"),
    ("cut json", b'{"event_id": "e-1"', "decode",
     "invalid JSON at byte 18: unexpected end of data"),
    ("trailing garbage", b'{"event_id": "e-1"} {}', "decode",
     "invalid JSON at byte 20: unexpected content after document"),
    ("byte offset after non-ascii", '{"é€": x}'.encode(), "decode",
     "invalid JSON at byte 10: unexpected character, expected a JSON value"),
    ("invalid utf-8", b'{"event_id": "\xff"}', "decode",
     "invalid JSON at byte 14: not valid UTF-8 (byte 0xff)"),
    ("json array", b"[1, 2]", "validation", "expected a JSON object, got an array"),
    ("json array after whitespace", b"  [{}]", "validation",
     "expected a JSON object, got an array"),
    ("json string", b'"e-1"', "format",
     "unknown wire format: first byte 0x22 ('\"'); expected '{' (JSON) or 0x00 (Confluent Avro)"),
    ("unknown magic byte", b"\x7fELF....", "format",
     "unknown wire format: first byte 0x7f; expected '{' (JSON) or 0x00 (Confluent Avro)"),
    ("empty", b"", "format", "empty record (0 bytes)"),
    ("whitespace only", b" \r\n ", "format", "record of 4 bytes holds only whitespace"),
    ("unknown schema id", confluent(42, TOUCHPOINT_AVRO[5:]), "format", "unknown schema id 42"),
    ("schema id of an output", confluent(2, TOUCHPOINT_AVRO[5:]), "format",
     "schema id 2 (stitched_touchpoint) is not accepted as input; "
     "touchpoints use schema id 1 (touchpoint)"),
    ("truncated header", b"\x00\x00\x01", "decode",
     "truncated Confluent header: 3 bytes, expected at least 5"),
    ("trailing avro bytes", TOUCHPOINT_AVRO + b"\x00\x00", "decode",
     "invalid Avro body for schema touchpoint: 2 bytes left after the record"),
    ("missing event_id", orjson.dumps(variant(event_id=...)), "validation",
     "missing field 'event_id'"),
    ("null event_id", orjson.dumps(variant(event_id=None)), "validation",
     "missing field 'event_id'"),
    ("blank event_id", orjson.dumps(variant(event_id="  ")), "validation",
     "field 'event_id' is empty"),
    ("numeric event_id", orjson.dumps(variant(event_id=123)), "validation",
     "field 'event_id' has type int, expected string"),
    ("missing event_time", orjson.dumps(variant(event_time=...)), "validation",
     "missing field 'event_time'"),
    ("list event_time", orjson.dumps(variant(event_time=[2026, 11, 20])), "validation",
     "field 'event_time' has type list, expected long or string"),
    ("float event_time", orjson.dumps(variant(event_time=1.7e12)), "validation",
     "field 'event_time' has type float, expected long or string"),
    ("bool event_time", orjson.dumps(variant(event_time=True)), "validation",
     "field 'event_time' has type bool, expected long or string"),
    ("missing type", orjson.dumps(variant(type=...)), "validation", "missing field 'type'"),
    ("empty type", orjson.dumps(variant(type="")), "validation", "field 'type' is empty"),
    ("channel not a string", orjson.dumps(variant(channel=["web"])), "validation",
     "field 'channel' has type list, expected string"),
    ("ids not a map", orjson.dumps(variant(ids=["c-9"])), "validation",
     "field 'ids' has type list, expected map of string"),
    ("id not a string", orjson.dumps(variant(ids={"email": 42})), "validation",
     "field 'ids.email' has type int, expected string"),
    ("context not an object", orjson.dumps(variant(context="paris")), "validation",
     "field 'context' has type str, expected object or null"),
    ("lat as text", orjson.dumps(variant(context={"lat": "48.84"})), "validation",
     "field 'context.lat' has type str, expected double"),
    ("bool as double", orjson.dumps(variant(properties={"revenue": True})), "validation",
     "field 'properties.revenue' has type bool, expected double"),
    ("in_stock as text", orjson.dumps(variant(properties={"in_stock": "yes"})), "validation",
     "field 'properties.in_stock' has type str, expected boolean"),
    ("max_per_day out of int range", orjson.dumps(variant(properties={"max_per_day": 2**40})),
     "validation", "field 'properties.max_per_day' value 1099511627776 is outside the int range"),
    ("blank event_id in avro", encode_avro("touchpoint", variant(event_id="")), "validation",
     "field 'event_id' is empty"),
]


@pytest.mark.parametrize("raw,kind,reason", [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_gives_kind_and_readable_reason(raw, kind, reason):
    with pytest.raises(DecodeError) as info:
        decode(raw)
    assert (info.value.kind, info.value.reason) == (kind, reason)
    assert str(info.value) == reason and "\n" not in reason


def test_oversized_is_refused_before_parsing():
    raw = b'{"event_id": "' + b"x" * 2_000_000 + b'"}'
    with pytest.raises(DecodeError) as info:
        decode(raw)
    assert info.value.kind == "oversized"
    assert info.value.reason == (f"record of {len(raw)} bytes exceeds the "
                                 f"{DEFAULT_MAX_BYTES}-byte limit")
    with pytest.raises(DecodeError, match="exceeds the 100-byte limit") as info:
        decode(orjson.dumps(EXAMPLE), max_bytes=100)
    assert info.value.kind == "oversized"
    assert decode(orjson.dumps(EXAMPLE), max_bytes=len(orjson.dumps(EXAMPLE))) == EXAMPLE


def test_every_truncation_of_an_avro_record_is_a_decode_error():
    for cut in range(5, len(TOUCHPOINT_AVRO)):
        with pytest.raises(DecodeError) as info:
            decode(TOUCHPOINT_AVRO[:cut])
        assert info.value.kind == "decode", cut
        assert info.value.reason.startswith("invalid Avro body for schema touchpoint: "), cut


def test_decode_avro_rejects_unknown_ids_and_bad_magic():
    with pytest.raises(DecodeError, match="^unknown schema id 99$") as info:
        decode_avro(confluent(99, b""))
    assert info.value.kind == "format"
    with pytest.raises(DecodeError, match="first byte 0x01") as info:
        decode_avro(b"\x01\x00\x00\x00\x01")
    assert info.value.kind == "format"


def test_decode_error_kinds_and_pickling():
    err = DecodeError("validation", "missing field 'event_id'")
    clone = pickle.loads(pickle.dumps(err))
    assert (clone.kind, clone.reason, type(clone)) == ("validation", "missing field 'event_id'",
                                                        DecodeError)
    assert repr(err) == "DecodeError('validation', \"missing field 'event_id'\")"
    with pytest.raises(ValueError):
        DecodeError("whatever", "x")


# --- the hand-written check agrees with the schema and with fastavro -----------------------------

def _avsc_fields(record_schema: dict) -> dict[str, object]:
    return {f["name"]: f["type"] for f in record_schema["fields"]}


def test_validation_tables_match_touchpoint_avsc():
    fields = _avsc_fields(registry.schema_json("touchpoint"))
    assert set(fields) == {"event_id", "event_time", "type", "ids", "context", "properties",
                           *codec.TOP_LEVEL_OPTIONAL}
    for name, avro_type in codec.TOP_LEVEL_OPTIONAL.items():
        assert fields[name] == ["null", avro_type]
    context = _avsc_fields(fields["context"][1])
    properties = _avsc_fields(fields["properties"][1])
    assert context == {k: ["null", t] for k, t in codec.CONTEXT_FIELDS.items()}
    assert properties == {k: ["null", t] for k, t in codec.PROPERTIES_FIELDS.items()}


_TOUCHPOINT = registry.schema("touchpoint")

junk = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70), st.floats(),
    st.text(max_size=4), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
good_by_type = {
    "string": st.text(max_size=6),
    "long": st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1),
                      st.sampled_from([2**63, -2**63 - 1, 1795158900000])),
    "int": st.one_of(st.integers(min_value=-2**31, max_value=2**31 - 1),
                     st.sampled_from([2**31, -2**31 - 1, 3])),
    "double": st.one_of(st.floats(), st.integers(min_value=-10**20, max_value=10**20)),
    "boolean": st.booleans(),
}


def _good(avro_type: str) -> st.SearchStrategy:
    return st.one_of(good_by_type[avro_type], st.none())


def _good_nested(fields: dict[str, str]) -> st.SearchStrategy:
    optional = {k: _good(t) for k, t in fields.items()}
    optional["extra_key"] = junk  # unknown keys are allowed by both
    return st.one_of(st.none(), st.fixed_dictionaries({}, optional=optional))


valid_touchpoint = st.fixed_dictionaries(
    {
        # may be blank: the stricter rule is tested too
        "event_id": st.text(min_size=1, max_size=4),
        "event_time": st.one_of(good_by_type["long"], st.text(max_size=8)),
        "type": st.one_of(st.sampled_from(["click", " "]), st.text(min_size=1, max_size=4)),
    },
    optional={
        **{k: _good(t) for k, t in codec.TOP_LEVEL_OPTIONAL.items()},
        "ids": st.one_of(st.none(), st.dictionaries(
            st.text(max_size=5), st.one_of(st.text(max_size=5), st.none()), max_size=3)),
        "context": _good_nested(codec.CONTEXT_FIELDS),
        "properties": _good_nested(codec.PROPERTIES_FIELDS),
        "unknown_top_level": junk,
    },
)

# Places a producer can get wrong: every field of the contract, at every level.
MUTABLE_PATHS = (
    [("event_id",), ("event_time",), ("type",), ("ids",), ("ids", "email"), ("context",),
     ("properties",)]
    + [(k,) for k in codec.TOP_LEVEL_OPTIONAL]
    + [("context", k) for k in codec.CONTEXT_FIELDS]
    + [("properties", k) for k in codec.PROPERTIES_FIELDS]
)
DELETE = object()


@st.composite
def touchpoint_like(draw) -> dict:
    """A valid touchpoint with zero to two fields deleted or replaced by a value of any type."""
    record = draw(valid_touchpoint)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        path = draw(st.sampled_from(MUTABLE_PATHS))
        value = draw(st.one_of(st.just(DELETE), junk))
        target = record
        for key in path[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        if value is DELETE:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
    return record


def _as_avro_datum(record: dict) -> dict:
    """The documented JSON leniency: null means absent, for ids and inside ids."""
    datum = dict(record)
    if "ids" in datum:
        if datum["ids"] is None:
            del datum["ids"]
        elif isinstance(datum["ids"], dict):
            datum["ids"] = {k: v for k, v in datum["ids"].items() if v is not None}
    return datum


def _not_blank(record: dict, name: str) -> bool:
    value = record.get(name)
    return not isinstance(value, str) or value.strip() != ""


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(touchpoint_like())
@example({"event_id": "e", "event_time": 1, "type": "t"})
@example({"event_id": "e", "event_time": 2**63, "type": "t"})
@example({"event_id": "e", "event_time": "x", "type": "t", "properties": {"max_per_day": 2**31}})
@example({"event_id": "e", "event_time": "x", "type": "t", "ids": {"a": None}})
def test_hand_validation_agrees_with_fastavro(record):
    expected = (fastavro_validate(_as_avro_datum(record), _TOUCHPOINT, raise_errors=False)
                and _not_blank(record, "event_id") and _not_blank(record, "type"))
    try:
        checked = codec.validate_touchpoint(record)
    except DecodeError as exc:
        assert exc.kind == "validation"
        assert not expected, f"rejected a valid record: {exc.reason}"
    else:
        assert expected, "accepted a record fastavro rejects"
        # what the check accepts can be written with the contract and reads back
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, _TOUCHPOINT, checked)
        buf.seek(0)
        back = fastavro.schemaless_reader(buf, _TOUCHPOINT)
        assert back["event_id"] == checked["event_id"]
        assert back["ids"] == (checked.get("ids") or {})
