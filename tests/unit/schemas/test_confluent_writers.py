"""A schema registry's writer schemas resolved into the touchpoint contract (schemas/confluent/
writers.py), and decode reading with them (schemas.codec.decode(raw, writers=...)): Avro's
resolution rules for evolved writers, the one-line reasons of refused ones, the cache."""
from __future__ import annotations

import copy
import io
import json
import struct

import fastavro
import orjson
import pytest

from schemas import registry
from schemas.codec import DecodeError, decode, encode_avro
from schemas.confluent.writers import Writer, WriterCache, framed_ids, resolve, unknown
from streams.ingest.normalise import ingest_batch

CONTRACT = registry.schema_json("touchpoint")
EVENT = {"event_id": "e-1", "event_time": 1_795_200_000_000, "type": "page_view",
         "channel": "web", "ids": {"cookie": "c-1"},
         "context": {"url": "https://brand.example/suv"},
         "properties": {"product_id": "suv-x", "max_per_day": 3}}


def _answer(doc: dict) -> dict:
    return {"schema": json.dumps(doc)}


def _framed(doc: dict, sid: int, record: dict) -> bytes:
    buf = io.BytesIO()
    buf.write(struct.pack(">BI", 0, sid))
    fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(doc)), record)
    return buf.getvalue()


def _evolved(change) -> dict:
    doc = copy.deepcopy(CONTRACT)
    change(doc)
    return doc


def _field(doc: dict, name: str) -> dict:
    return next(f for f in doc["fields"] if f["name"] == name)


def _properties(doc: dict) -> dict:
    return _field(doc, "properties")["type"][1]


def _read(doc: dict, record: dict, sid: int = 101) -> dict:
    writer = resolve(sid, _answer(doc))
    assert writer.refusal is None, writer.refusal
    return decode(_framed(doc, sid, record), writers={sid: writer})


def test_the_contract_itself_resolves_and_reads_what_local_avro_reads():
    local = decode(encode_avro("touchpoint", EVENT))
    assert _read(CONTRACT, EVENT) == local


def test_an_extra_field_is_skipped_and_another_namespace_is_accepted():
    def change(doc):
        doc["namespace"] = "com.acme.events"  # nested Context / Properties follow it
        doc["fields"].append({"name": "tenant", "type": "string"})
        _properties(doc)["fields"].append({"name": "coupon", "type": ["null", "string"],
                                           "default": None})

    record = {**EVENT, "tenant": "acme", "properties": {**EVENT["properties"], "coupon": "X"}}
    got = _read(_evolved(change), record)
    assert "tenant" not in got and "coupon" not in got["properties"]
    assert got["event_id"] == "e-1" and got["properties"]["product_id"] == "suv-x"
    assert resolve(101, _answer(_evolved(change))).name == "com.acme.events.Touchpoint"


def test_a_field_the_writer_lacks_gets_the_contracts_default():
    doc = _evolved(lambda d: d.update(fields=[f for f in d["fields"]
                                              if f["name"] not in ("campaign", "ids")]))
    got = _read(doc, {k: v for k, v in EVENT.items() if k != "ids"})
    assert got["campaign"] is None and got["ids"] == {}


def test_int_is_promoted_to_long_and_float_to_double():
    def change(doc):
        _field(doc, "event_time")["type"] = "int"  # the contract: ["long", "string"]
        ctx = _field(doc, "context")["type"][1]
        _field(ctx, "lat")["type"] = ["null", "float"]

    record = {**EVENT, "event_time": 1_700_000, "context": {"lat": 48.5}}
    got = _read(_evolved(change), record)
    assert got["event_time"] == 1_700_000 and type(got["event_time"]) is int
    assert got["context"]["lat"] == 48.5


def test_fields_in_another_order_are_matched_by_name():
    doc = _evolved(lambda d: d["fields"].reverse())
    assert _read(doc, EVENT) == _read(CONTRACT, EVENT)


def test_a_logical_timestamp_in_the_writer_reads_as_epoch_millis():
    doc = _evolved(lambda d: _field(d, "event_time").update(
        type={"type": "long", "logicalType": "timestamp-millis"}))
    got = _read(doc, EVENT)
    assert got["event_time"] == EVENT["event_time"] and type(got["event_time"]) is int


@pytest.mark.parametrize("change,reason", [
    (lambda d: d.update(name="PageView"), "record name changed"),
    (lambda d: _field(d, "event_id").update(type="long"), "type changed incompatibly"),
    (lambda d: d.update(fields=[f for f in d["fields"] if f["name"] != "type"]),
     "new field has no default (type)"),
    (lambda d: _field(_properties(d), "max_per_day").update(type=["null", "long"]),
     "at /fields/8/type/1"),  # long does not narrow to int: the Properties branch fails
])
def test_an_incompatible_writer_is_refused_once_with_a_one_line_reason(change, reason):
    writer = resolve(102, _answer(_evolved(change)))
    assert writer.schema is None and reason in writer.refusal
    assert writer.refusal.startswith("schema id 102 (") and "\n" not in writer.refusal
    assert "cannot be read as a touchpoint" in writer.refusal
    with pytest.raises(DecodeError) as info:
        decode(b"\x00\x00\x00\x00\x66" + b"\x00" * 10, writers={102: writer})
    assert (info.value.kind, info.value.reason) == ("format", writer.refusal)


@pytest.mark.parametrize("answer,reason", [
    ({"schema": '{"type": "object"}', "schemaType": "JSON"}, "is a JSON schema"),
    ({"schema": "syntax = 'proto3';", "schemaType": "PROTOBUF"}, "is a PROTOBUF schema"),
    ({"schema": json.dumps(CONTRACT), "references": [{"name": "x", "subject": "s",
                                                      "version": 1}]}, "schema references"),
    ({"schema": "{not json"}, "is not JSON"),
    ({"schema": json.dumps({"type": "record", "name": "T", "fields": [
        {"name": "x", "type": "nope"}]})}, "is not valid Avro"),
])
def test_what_parcours_cannot_read_is_refused_with_its_reason(answer, reason):
    writer = resolve(7, answer)
    assert writer.refusal is not None and reason in writer.refusal
    assert writer.refusal.startswith("schema id 7 ")


def test_with_writers_every_framed_id_is_the_registrys_even_a_local_one():
    local = encode_avro("touchpoint", EVENT)  # framed with local id 1
    assert decode(local)["event_id"] == "e-1"
    with pytest.raises(DecodeError) as info:
        decode(local, writers={})
    assert (info.value.kind, info.value.reason) == ("format",
                                                    "schema id 1 is not in the schema registry")
    with pytest.raises(DecodeError, match="schema id 1 is not in the schema registry "
                                          r"\(HTTP 404, error_code 40403\)"):
        decode(local, writers={1: unknown(1, "HTTP 404, error_code 40403")})


def test_json_records_do_not_need_writers():
    assert decode(orjson.dumps(EVENT), writers={})["event_id"] == "e-1"


def test_ingest_batch_reads_registry_records_and_dead_letters_the_refused():
    evolved = _evolved(lambda d: d["fields"].append({"name": "tenant", "type": "string",
                                                     "default": "-"}))
    renamed = _evolved(lambda d: d.update(name="PageView"))
    writers = {101: resolve(101, _answer(evolved)), 102: resolve(102, _answer(renamed))}
    raws = [(_framed(evolved, 101, {**EVENT, "tenant": "acme"}), "touchpoints", 0, 0),
            (_framed(renamed, 102, EVENT), "touchpoints", 0, 1),
            (encode_avro("touchpoint", EVENT), "touchpoints", 0, 2),
            (orjson.dumps({**EVENT, "event_id": "e-json"}), "touchpoints", 0, 3)]
    good, dead = ingest_batch(raws, writers=writers, now_ms=EVENT["event_time"])
    assert [tp["event_id"] for tp in good] == ["e-1", "e-json"]
    assert good[0]["ids"] == {"cookie": "c-1"} and good[0]["channel"] == "web"
    assert [(d["offset"], d["error"]) for d in dead] == [(1, "format"), (2, "format")]
    assert "record name changed" in dead[0]["reason"]
    assert dead[1]["reason"] == "schema id 1 is not in the schema registry"


def test_framed_ids_are_the_distinct_ids_of_confluent_records_only():
    values = [_framed(CONTRACT, 101, EVENT), _framed(CONTRACT, 101, EVENT),
              encode_avro("touchpoint", EVENT, schema_id=2**31 - 1), b"\x00\x00", b'{"a": 1}',
              None, memoryview(_framed(CONTRACT, 7, EVENT)), DecodeError("decode", "x")]
    assert framed_ids(values) == {101, 7, 2**31 - 1}


def test_the_cache_keeps_writers_for_good_and_unknown_ids_for_a_while():
    cache = WriterCache(unknown_ttl_s=60)
    assert cache.missing([5, 3], now=0) == [3, 5]
    cache.add(3, Writer("T", {"type": "null"}))
    cache.add_unknown(5, unknown(5), now=0)
    assert cache.missing([3, 5], now=59.9) == []
    assert cache.writers[5].refusal == "schema id 5 is not in the schema registry"
    assert cache.missing([3, 5], now=60) == [5]  # asked again: it may be registered now
    assert 5 not in cache.writers and cache.missing([3], now=10**9) == []
    cache.add(5, Writer("T", {"type": "null"}))
    assert cache.missing([5], now=10**9) == []  # found: for good


def test_unknown_ids_cost_bounded_memory():
    cache = WriterCache(unknown_ttl_s=60, max_unknown=3)
    cache.add(1, Writer("T", {"type": "null"}))
    for sid in range(10, 20):  # hostile records, each with a random id
        cache.add_unknown(sid, unknown(sid), now=0)
    assert sorted(cache.writers) == [1, 17, 18, 19]  # the newest unknown ones, and the found
    assert cache.missing([10, 19], now=1) == [10]
