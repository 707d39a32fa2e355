"""The worker's Faust app as `create_app` builds it (no broker needed: nothing connects yet)."""
from __future__ import annotations

from types import SimpleNamespace

import orjson

from streams.config import Settings, Topics
from streams.kafka.clients import KafkaClients
from streams.kafka.security import KafkaSecurity
from streams.pipeline import STORES
from streams.worker.app import create_app
from streams.worker.tables import TABLE_NAMES, Tables, TableStore


def _settings(tmp_path, **kw) -> Settings:
    return Settings(kafka_url="kafka://b1:9092,b2:9092", clickhouse_url="chdb://unused",
                    data_dir=tmp_path / "data", **kw)


def test_the_app_has_the_journey_agent_the_tasks_the_timers_and_a_table_per_store(tmp_path):
    app, shell = create_app(_settings(tmp_path))
    topics = Topics()
    assert list(app.agents) == ["journey"]
    stitch = app.agents["journey"].channel
    assert (stitch.get_topic_name(), stitch.partitions, stitch.internal) == (topics.stitch, 1, True)
    assert [task.__name__ for task in app._app_tasks] == [
        "declare_outputs", "ingest_stage", "follow_inventory",  # tasks, then the timers
        "report_idle", "report_stuck", "report_lag"]
    assert [service.__name__ for service in app._extra_services] == ["OutputProducer"]
    assert sorted(table.name for table in app.tables.values()) == sorted(TABLE_NAMES.values())
    assert len(TABLE_NAMES) == len(STORES)
    assert shell.inputs() == []  # the ingest consumer has not started: nothing assigned
    assert shell.changelog() == [[], []]
    assert (tmp_path / "data").is_dir()


def test_the_faust_broker_and_every_client_share_the_connection_and_its_security(tmp_path):
    security = KafkaSecurity("SASL_PLAINTEXT", username="u", password="p")
    app, shell = create_app(_settings(tmp_path, kafka_security=security))
    assert [str(url) for url in app.conf.broker] == ["kafka://b1:9092", "kafka://b2:9092"]
    assert app.conf.broker_credentials.username == "u"
    ingest = shell.inputs.__self__.ingest
    for client in (shell.producer, ingest):
        assert client.clients == KafkaClients("b1:9092,b2:9092", security)
        options = client.clients.options(**client._options)
        assert options["security_protocol"] == "SASL_PLAINTEXT"
        assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("u", "p")
    assert shell.producer._options["client_id"] == "parcours-outputs"
    assert ingest._options["group_id"] == "parcours-ingest"


def _table(topic: str):
    return SimpleNamespace(data=SimpleNamespace(data={}),
                           changelog_topic=SimpleNamespace(get_topic_name=lambda: topic))


def test_a_store_sends_each_changed_key_once_with_its_last_value():
    store = TableStore(_table("t-changelog"))
    store["a"] = {"n": 1}
    store["a"] = {"n": 2}
    store["b"] = [1]
    del store["b"]
    assert dict(store.table.data.data) == {"a": {"n": 2}}
    assert store.drain() == [("t-changelog", b'"a"', orjson.dumps({"n": 2})),
                             ("t-changelog", b'"b"', None)]
    assert store.drain() == []


def test_the_changelog_sends_the_clock_after_everything_else():
    app = SimpleNamespace(Table=lambda name, **kw: _table(f"{name}-changelog"))
    tables = Tables(app)
    for store in tables.stores.values():
        store["k"] = 1
    state, clock = tables.changelog()
    assert [topic for topic, _key, _value in clock] == ["journey-clock-changelog"]
    assert sorted(topic for topic, _key, _value in state) == sorted(
        f"{name}-changelog" for key, name in TABLE_NAMES.items() if key != "clock")
    assert tables.changelog() == [[], []]
