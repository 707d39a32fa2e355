"""Where the traits stage's lists go: audience records to the `audiences` topic (keyed by profile,
Avro contract `audience_record`) and, but for an erasure's, to `audience_membership`; traits rows
to `profile_traits` only. The worker (through the sink topic) and replay (`table_rows`) agree."""
from __future__ import annotations

import orjson

from schemas.codec import decode_avro, encode_avro
from schemas.registry import schema_json
from streams.config import Topics
from streams.pipeline import Emitted
from streams.traits.records import AudienceRecord, deleted_row, traits_row, transition
from streams.worker import sink_blocks
from streams.worker.outputs import TABLE_OF, journey_records, rows_of, table_rows

TOPICS = Topics()
T0 = 1795158900000
NOW = T0 + 60_000


def _batch() -> Emitted:
    st = {"b": "e-1", "fs": T0, "ls": T0, "at": T0, "v": 3, "lc": [[T0, "known"]], "a": ["vip"]}
    values = {"purchases": 0, "revenue": 0.0, "last_purchase_at": None, "lifecycle": "known",
              "top_channel": "email", "rfm": None, "rfm.r": None, "rfm.f": None, "rfm.m": None}
    gone = {"b": "e-2", "at": T0}
    return Emitted(
        traits=[traits_row("p-1", st, values, {"email": True}), deleted_row("p-3", st)],
        audiences=[transition("p-1", st, "vip", True, T0, "e-7", "event"),
                   transition("p-1", st, "lapsed", False, T0, None, "time"),
                   transition("p-2", gone, "vip", False, T0, None, "forget")])


def test_audience_records_go_to_their_topic_keyed_by_profile_and_traits_to_no_topic():
    out = _batch()
    records, _sink = journey_records(out, TOPICS, NOW)
    assert [(topic, key, orjson.loads(value)) for topic, key, value in records] == [
        (TOPICS.audiences, rec["profile_id"].encode(), rec) for rec in out.audiences]
    assert TOPICS.audiences == "audiences"


def test_the_sink_topic_gives_the_rows_replay_writes_an_erasures_exit_in_no_table():
    out = _batch()
    _records, sink = journey_records(out, TOPICS, NOW)
    blocks = [sink_blocks.decode(value) for topic, _key, value in sink]
    assert {topic for topic, _key, _value in sink} == {TOPICS.sink}
    # the traits rows last: after the batch's erasures (journey_records' `erasures`)
    assert [block["kind"] for block in blocks] == ["audiences", "traits"]
    via_sink = {TABLE_OF[b["kind"]]: rows_of(b["kind"], b["items"], b["now"]) for b in blocks}
    assert via_sink == table_rows(out, NOW)
    traits = via_sink["profile_traits"]
    assert traits == [{**row, "updated_at": NOW} for row in out.traits]
    assert [r["record_id"] for r in via_sink["audience_membership"]] == [
        r["record_id"] for r in out.audiences[:2]]
    assert [(r["event_id"], r["ingested_at"]) for r in via_sink["audience_membership"]] == [
        ("e-7", NOW), ("", NOW)]


def test_a_batch_of_erasure_exits_only_writes_no_table():
    out = _batch()
    out.audiences = out.audiences[2:]
    out.traits = []
    assert table_rows(out, NOW) == {}
    records, _sink = journey_records(out, TOPICS, NOW)
    assert [topic for topic, _key, _value in records] == [TOPICS.audiences]  # but the topic, yes


def test_the_audience_record_contract_holds_the_records():
    fields = [field["name"] for field in schema_json("audience_record")["fields"]]
    assert fields == list(AudienceRecord.__annotations__)
    for record in _batch().audiences:
        assert decode_avro(encode_avro("audience_record", record)) == ("audience_record", record)


def test_the_worker_declares_the_audiences_topic(tmp_path):
    from streams.config import Settings
    from streams.kafka.clients import KafkaClients
    from streams.moments.rules.loader import load_default
    from streams.worker.app import declare_topics, faust_app

    settings = Settings(kafka_url="kafka://b1:9092", clickhouse_url="chdb://unused",
                        data_dir=tmp_path / "data")
    app = faust_app(settings, KafkaClients.of(settings))
    outputs = declare_topics(app, settings, load_default()).outputs
    names = [name for topic in outputs for name in topic.topics]
    assert TOPICS.audiences in names and TOPICS.suppressions in names


def test_a_batchs_erasures_go_after_its_other_rows_and_before_its_traits_rows():
    out = _batch()
    erase = (TOPICS.sink, None, sink_blocks.erase("r-1", "p-2", ["user:u"]))
    _records, sink = journey_records(out, TOPICS, NOW, [erase])
    kinds = [sink_blocks.decode(value)["kind"] for _topic, _key, value in sink]
    assert kinds.index("audiences") < kinds.index("erase") < kinds.index("traits"), kinds
