"""The RocksDB journals: reads see every write at once, nothing reaches the database before its
changelog records are acknowledged, and then the records and the offset arrive together, in
Faust's own format (what Faust's recovery and its persisted offset read)."""
from __future__ import annotations

import orjson
import pytest
from faust.types import TP

from streams.config import ConfigError, Settings, load
from streams.kafka.clients import KafkaClients
from streams.worker.app import faust_app
from streams.worker.tables import OFFSET_KEY, Tables


@pytest.fixture
def tables(tmp_path):
    settings = Settings(kafka_url="kafka://b1:9092", clickhouse_url="chdb://unused",
                        data_dir=tmp_path / "data", store="rocksdb")
    app = faust_app(settings, KafkaClients.of(settings))
    made = Tables(app, "rocksdb", cache_keys=16, shards=2)
    yield made
    for table in made.tables.values():
        for db in table.data._dbs.values():
            db.close()


def _db(tables, name="sequencer", partition=0):
    return tables.journal(name, partition).views_db()


def test_writes_reach_the_database_with_the_offset_only_once_acked(tables):
    store = tables.sequencer_stores()["profiles"]
    store["p-1"] = {"n": 1}
    store["p-2"] = {"n": 2}
    del store["p-2"]
    assert store.get("p-1") == {"n": 1} and "p-2" not in store and store.get("p-2", 0) == 0
    records = tables.changelog("sequencer", 0)
    topic = tables.tables["sequencer"].changelog_topic.get_topic_name()
    assert records == [(topic, b'"~abort"', b"1", 0), (topic, b'"p/p-1"', b'{"n":1}', 0),
                       (topic, b'"p/p-2"', None, 0), (topic, b'"~commit"', b"1", 0)]
    db = _db(tables)
    assert db.get(b'"p/p-1"') is None and db.get(OFFSET_KEY) is None  # not acked yet
    store.cache.clear()  # an empty cache: reads fall back to the records waiting for their ack
    assert store["p-1"] == {"n": 1} and "p-2" not in store

    tables.acked({(topic, 0): 41, ("touchpoints.stitched", 0): 7})
    assert db.get(b'"p/p-1"') == b'{"n":1}' and db.get(b'"p/p-2"') is None
    assert db.get(OFFSET_KEY) == b"41"
    # what Faust's recovery reads to start after it
    assert tables.tables["sequencer"].data.persisted_offset(TP(topic, 0)) == 41
    assert tables.changelog("sequencer", 0) == []


def test_each_shard_has_its_own_database_and_its_stores_their_own_prefix(tables):
    first, second = tables.shard_stores(0), tables.shard_stores(1)
    first["paths"]["p-1"] = [1]
    first["timers"]["p-1"] = [2]
    second["paths"]["p-9"] = [9]
    topic = tables.tables["shards"].changelog_topic.get_topic_name()
    assert {r[3] for r in tables.changelog("shards", 0)} == {0}
    assert {r[3] for r in tables.changelog("shards", 1)} == {1}
    tables.acked({(topic, 0): 3, (topic, 1): 2})
    assert dict(first["paths"].items()) == {"p-1": [1]}
    assert dict(first["timers"].items()) == {"p-1": [2]}
    assert dict(second["paths"].items()) == {"p-9": [9]}
    assert _db(tables, "shards", 1).get(b'"a/p-1"') is None


def test_an_unacknowledged_drain_is_sent_again_with_the_next(tables):
    store = tables.shard_stores(0)["paths"]
    store["a"] = [1]
    first = tables.changelog("shards", 0)
    store["b"] = [2]  # the send of `first` failed: no ack came
    again = tables.changelog("shards", 0)
    assert set(first[1:-1]) < set(again) and (first[0][0], b'"a/b"', b"[2]", 0) in again


def test_reads_past_the_bounded_cache_come_from_the_database(tables):
    store = tables.sequencer_stores()["ids"]
    for i in range(100):
        store[f"k{i}"] = i
    tables.changelog("sequencer", 0)
    tables.journal("sequencer", 0).acked(99)
    assert len(store.cache) <= 16
    assert [store.get(f"k{i}") for i in range(100)] == list(range(100))
    assert dict(store.items()) == {f"k{i}": i for i in range(100)} and len(store) == 100
    store["new"] = "x"
    del store["k0"]
    assert len(store) == 100 and "k0" not in dict(store.items())
    assert orjson.loads(_db(tables).get(b'"i/k5"')) == 5
    assert dict(tables.sequencer_stores()["profiles"].items()) == {}  # another prefix


def test_the_store_setting_is_memory_or_rocksdb():
    env = {"PARCOURS_KAFKA_URL": "kafka://b:9092", "PARCOURS_CLICKHOUSE_URL": "chdb:///x"}
    assert load(env).store == "rocksdb"
    assert load({**env, "PARCOURS_STORE": "Memory"}).store == "memory"
    assert load(env).standby_replicas == 0  # opt-in: a standby's replay costs CPU (README)
    assert load({**env, "PARCOURS_STANDBY_REPLICAS": "1"}).standby_replicas == 1
    with pytest.raises(ConfigError, match="PARCOURS_STORE='leveldb': expected memory or rocksdb"):
        load({**env, "PARCOURS_STORE": "leveldb"})


def test_the_app_has_standby_replicas_and_the_chosen_store(tmp_path):
    for store, url in (("rocksdb", "rocksdb:"), ("memory", "memory:")):
        settings = Settings(kafka_url="kafka://b1:9092", clickhouse_url="chdb://unused",
                            data_dir=tmp_path / store, store=store, standby_replicas=1)
        app = faust_app(settings, KafkaClients.of(settings))
        assert str(app.conf.store).startswith(url) and app.conf.table_standby_replicas == 1
