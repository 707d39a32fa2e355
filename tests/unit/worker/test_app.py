"""The worker's Faust app as `create_app` builds it (no broker needed: nothing connects yet)."""
from __future__ import annotations

from types import SimpleNamespace

import orjson

from streams.config import Settings, Topics
from streams.kafka.clients import KafkaClients
from streams.kafka.security import KafkaSecurity
from streams.worker.app import create_app
from streams.worker.journal import CommitFilter, Journal
from streams.worker.tables import TABLE_NAMES


def _settings(tmp_path, **kw) -> Settings:
    return Settings(kafka_url="kafka://b1:9092,b2:9092", clickhouse_url="chdb://unused",
                    data_dir=tmp_path / "data", **kw)


def test_the_app_has_the_sequencer_and_shard_agents_the_tasks_the_timers_and_two_tables(tmp_path):
    app, shell = create_app(_settings(tmp_path, journey_partitions=3))
    topics = Topics()
    assert list(app.agents) == ["sequencer", "shards"]
    stitch = app.agents["sequencer"].channel
    assert (stitch.get_topic_name(), stitch.partitions, stitch.internal) == (topics.stitch, 1, True)
    shards = app.agents["shards"].channel
    assert (shards.topics, shards.partitions) == ((topics.journey, topics.transfer), 3)
    assert [task.__name__ for task in app._app_tasks] == [
        "declare_outputs", "ingest_stage", "follow_inventory",  # tasks, then the timers
        "report_idle", "report_stuck", "report_lag"]
    # the output producer and the sequencer's log-ends reader
    assert [service.__name__ for service in app._extra_services] == ["StopsWithApp"] * 2
    assert {table.name: table.partitions for table in app.tables.values()} == {
        TABLE_NAMES["sequencer"]: 1, TABLE_NAMES["shards"]: 3}
    assert shell.inputs() == []  # the ingest consumer has not started: nothing assigned
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
    return SimpleNamespace(data=SimpleNamespace(data={}, _key_partition={}),
                           changelog_topic=SimpleNamespace(get_topic_name=lambda: topic))


def test_a_batch_is_one_framed_run_on_its_partition_each_changed_key_once():
    journal = Journal(_table("t-changelog"), 2, ["paths", "clock"], "memory")
    paths, clock = journal.views["paths"], journal.views["clock"]
    paths["a"] = {"n": 1}
    paths["a"] = {"n": 2}
    paths["b"] = [1]
    del paths["b"]
    clock["shard-2"] = {"h": 5}
    assert journal.table.data.data == {"a/a": {"n": 2}, "c/shard-2": {"h": 5}}
    assert journal.table.data._key_partition == {"a/a": 2, "c/shard-2": 2}
    assert dict(paths.items()) == {"a": {"n": 2}} and "b" not in paths
    assert journal.drain() == [
        ("t-changelog", b'"~abort"', b"1", 2),
        ("t-changelog", b'"a/a"', orjson.dumps({"n": 2}), 2),
        ("t-changelog", b'"a/b"', None, 2),
        ("t-changelog", b'"c/shard-2"', b'{"h":5}', 2),
        ("t-changelog", b'"~commit"', b"1", 2)]
    assert journal.drain() == []


def _record(partition: int, offset: int, key: bytes, value=b"1"):
    return SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset, key=key,
                                                   value=value))


def test_recovery_applies_committed_runs_only():
    applied = []
    table = SimpleNamespace(apply_changelog_batch=applied.extend)
    commit_filter = CommitFilter(table)
    run = [b'"~abort"', b'"a/x"', b'"a/y"', b'"~commit"']
    torn = [b'"~abort"', b'"a/z"']  # killed mid-changelog: no commit
    records = [_record(0, i, key) for i, key in enumerate(run + torn)]
    table.apply_changelog_batch(records[:3])  # Faust hands them over in any chunks
    assert applied == []
    table.apply_changelog_batch(records[3:])
    assert [r.message.key for r in applied] == [b'"a/x"', b'"a/y"', b'"~commit"']
    # the next owner's first run begins with an abort: the torn tail is dropped
    again = [_record(0, 6 + i, key) for i, key in enumerate([b'"~abort"', b'"a/w"', b'"~commit"'])]
    table.apply_changelog_batch(again)
    assert [r.message.key for r in applied[3:]] == [b'"a/w"', b'"~commit"']
    assert commit_filter.discarded == 1
    # a standby's half-read run is kept until recovery says the partition is this worker's
    table.apply_changelog_batch([_record(1, 0, b'"~abort"'), _record(1, 1, b'"a/v"')])
    commit_filter.reset({0})
    assert commit_filter.pending[1] and commit_filter.discarded == 1
    commit_filter.reset({1})
    assert 1 not in commit_filter.pending and commit_filter.discarded == 2
