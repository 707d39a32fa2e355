"""The RocksDB table store: reads see every write at once, nothing reaches the database before its
changelog records are acknowledged, and then the records and the offset arrive together, in
Faust's own format (what Faust's recovery and its persisted offset read)."""
from __future__ import annotations

import orjson
import pytest

from streams.config import ConfigError, Settings, load
from streams.kafka.clients import KafkaClients
from streams.worker.app import faust_app
from streams.worker.tables import OFFSET_KEY, RocksTableStore, Tables


@pytest.fixture
def tables(tmp_path):
    settings = Settings(kafka_url="kafka://b1:9092", clickhouse_url="chdb://unused",
                        data_dir=tmp_path / "data", store="rocksdb")
    app = faust_app(settings, KafkaClients.of(settings))
    made = Tables(app, "rocksdb", cache_keys=16)
    yield made
    for table in made.tables.values():
        for db in table.data._dbs.values():
            db.close()


def _db(store: RocksTableStore):
    return store._db()


def test_writes_reach_the_database_with_the_offset_only_once_acked(tables):
    store = tables.stores["profiles"]
    assert isinstance(store, RocksTableStore)
    store["p-1"] = {"n": 1}
    store["p-2"] = {"n": 2}
    del store["p-2"]
    assert store.get("p-1") == {"n": 1} and "p-2" not in store and store.get("p-2", 0) == 0
    topic = store.changelog_topic
    assert store.drain() == [(topic, b'"p-1"', b'{"n":1}'), (topic, b'"p-2"', None)]
    db = _db(store)
    assert db.get(b'"p-1"') is None and db.get(OFFSET_KEY) is None  # not acked yet
    store.recovered()  # an empty cache: reads fall back to the records waiting for their ack
    assert store["p-1"] == {"n": 1} and "p-2" not in store

    tables.acked({(topic, 0): 41, ("touchpoints.stitched", 0): 7})
    assert db.get(b'"p-1"') == b'{"n":1}' and db.get(b'"p-2"') is None
    assert db.get(OFFSET_KEY) == b"41"
    # what Faust's recovery reads to start after it
    assert tables.tables["profiles"].data.persisted_offset(_tp(topic)) == 41
    assert store.drain() == []


def _tp(topic: str):
    from faust.types import TP

    return TP(topic, 0)


def test_an_unacknowledged_drain_is_sent_again_with_the_next(tables):
    store = tables.stores["paths"]
    store["a"] = [1]
    first = store.drain()
    store["b"] = [2]  # the send of `first` failed: no ack came
    assert sorted(store.drain()) == sorted(first + [(store.changelog_topic, b'"b"', b"[2]")])


def test_reads_past_the_bounded_cache_come_from_the_database(tables):
    store = tables.stores["ids"]
    for i in range(100):
        store[f"k{i}"] = i
    store.drain()
    store.acked(99)
    assert len(store.cache) <= 16
    assert [store.get(f"k{i}") for i in range(100)] == list(range(100))
    assert dict(store.items()) == {f"k{i}": i for i in range(100)} and len(store) == 100
    store["new"] = "x"
    del store["k0"]
    assert len(store) == 100 and "k0" not in dict(store.items())
    assert orjson.loads(_db(store).get(b'"k5"')) == 5


def test_the_store_setting_is_memory_or_rocksdb():
    env = {"PARCOURS_KAFKA_URL": "kafka://b:9092", "PARCOURS_CLICKHOUSE_URL": "chdb:///x"}
    assert load(env).store == "rocksdb"
    assert load({**env, "PARCOURS_STORE": "Memory"}).store == "memory"
    assert load(env).standby_replicas == 1
    with pytest.raises(ConfigError, match="PARCOURS_STORE='leveldb': expected memory or rocksdb"):
        load({**env, "PARCOURS_STORE": "leveldb"})


def test_the_app_has_standby_replicas_and_the_chosen_store(tmp_path):
    for store, url in (("rocksdb", "rocksdb:"), ("memory", "memory:")):
        settings = Settings(kafka_url="kafka://b1:9092", clickhouse_url="chdb://unused",
                            data_dir=tmp_path / store, store=store, standby_replicas=1)
        app = faust_app(settings, KafkaClients.of(settings))
        assert str(app.conf.store).startswith(url) and app.conf.table_standby_replicas == 1
