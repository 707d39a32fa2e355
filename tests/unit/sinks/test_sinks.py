"""Sinks against a real chDB engine in a temporary directory (no mocks of ClickHouse).

chDB hosts one engine per process: every test opens its own directory through `connect()` and the
fixtures close it again, so the next test can open another one.
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sinks import clickhouse
from sinks.clickhouse import SinkConfigError, close, close_all, connect, parse_url
from sinks.migrations import MIGRATIONS, applied_versions, check_migrations, migrate
from sinks.tables import TABLES
from sinks.writer import ClickHouseSink, ClickHouseTableWriter, SinkError

ROOT = Path(__file__).resolve().parents[3]
T0 = 1763622900000  # 2025-11-20T07:15:00Z in epoch ms


@pytest.fixture(autouse=True)
def _release_engine():
    yield
    close_all()  # a failed test must not leave the process-wide chDB engine open for the next one


@pytest.fixture
def ch(tmp_path):
    client = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(client)
    yield client
    close(client)


def count(client, table: str, final: bool = False) -> int:
    return int(client.command(f"SELECT count() FROM {table}{' FINAL' if final else ''}"))


def credit_rows(n: int, conversions: int = 5, model: str = "linear") -> list[dict]:
    channels = ["email", "display", "web", "push"]
    return [
        {"conversion_id": f"c-{i % conversions}",
         "conversion_time": T0 + (i % conversions) * 86_400_000,
         "profile_id": f"p-{i % conversions}", "model": model, "touchpoint_id": f"e-{i}",
         "touchpoint_time": T0 - i * 1000, "channel": channels[i % len(channels)],
         "campaign": "winter-suv" if i % 2 else None, "publisher": "autonews.example",
         "credit": 0.5, "revenue_credit": 10.0}
        for i in range(n)
    ]


# ---- migrations -------------------------------------------------------------------------------

def test_migrate_twice_is_idempotent_and_records_versions(ch):
    assert applied_versions(ch) == {v for v, _, _ in MIGRATIONS}
    assert migrate(ch) == []  # second start: nothing to do
    rows = ch.query("SELECT version, name, applied_at FROM schema_migrations FINAL").result_rows
    assert [(v, n) for v, n, _ in sorted(rows)] == [(v, n) for v, n, _ in MIGRATIONS]
    # every statement is idempotent: a start that died half-way through a migration can re-run it
    for _, _, statements in MIGRATIONS:
        for statement in statements:
            ch.command(statement)
    last = MIGRATIONS[-1][0]
    later = MIGRATIONS + [(last + 1, "add a column", [
        "ALTER TABLE triggers ADD COLUMN IF NOT EXISTS variant LowCardinality(String) DEFAULT ''"])]
    assert migrate(ch, later) == [last + 1]
    assert migrate(ch, later) == []
    assert applied_versions(ch) == {v for v, _, _ in later}


def test_migration_list_must_increase():
    with pytest.raises(ValueError, match="not after version 2"):
        check_migrations([(1, "a", ["SELECT 1"]), (2, "b", ["SELECT 1"]), (2, "c", ["SELECT 1"])])
    with pytest.raises(ValueError, match="no statements"):
        check_migrations([(1, "a", [])])


def test_writer_schemas_match_the_ddl(ch):
    tables = {name: (sorting_key, comment) for name, sorting_key, comment in ch.query(
        "SELECT name, sorting_key, comment FROM system.tables "
        "WHERE database = currentDatabase()").result_rows}
    for name, table in TABLES.items():
        columns = [c for (c,) in ch.query(
            "SELECT name FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String} "
            "ORDER BY position", parameters={"t": name}).result_rows]
        assert list(table.column_names) == columns, name
        sorting_key, comment = tables[name]
        assert all(k in sorting_key for k in table.key), (name, sorting_key)
        assert comment.startswith("parcours:"), name
        times = {c for c, t in ch.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String}",
            parameters={"t": name}).result_rows if t.startswith("DateTime64(3, 'UTC')")}
        assert times == table.of_kind("time"), name
    assert tables["attribution_daily"][1].startswith("parcours:")


# ---- connect ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url, message", [
    ("", "is empty"),
    ("mysql://u:p@db:3306/x", "unknown scheme 'mysql'"),
    ("localhost:8123", "is not a URL"),
    ("/var/lib/ch", "is not a URL"),
    ("chdb://relative/path", "ambiguous"),
    ("chdb:relative", "is not a URL"),
    ("chdb:///", "root"),
    ("chdb:///tmp/x?engine=1", "take no options"),
    ("http://h:notaport/db", "malformed URL"),
    ("http://h:70000/db", "malformed URL"),
    ("http:///db", "no host"),
    ("http://h:8123/a/b", "single database name"),
    ("http://h:8123/bad$name", "database name"),
    ("https://h/db?timeout=3", "unknown option 'timeout'"),
    ("http://h/db?connect_timeout=soon", "not a number"),
])
def test_bad_urls_give_one_line_config_errors(url, message):
    with pytest.raises(SinkConfigError, match=message) as info:
        connect(url)
    text = str(info.value)
    assert "\n" not in text and text.startswith("PARCOURS_CLICKHOUSE_URL: ")
    assert isinstance(info.value, ValueError)


def test_parse_url_forms(tmp_path, monkeypatch):
    target = parse_url("http://an%40lyst:p%3Ass@ch.example:8124/parcours?connect_timeout=2")
    assert (target.host, target.port, target.username, target.password, target.database) == \
        ("ch.example", 8124, "an@lyst", "p:ss", "parcours")
    assert target.options == {"connect_timeout": 2.0}
    assert "p:ss" not in target.display() and "p:ss" not in repr(target)
    assert (parse_url("https://h").port, parse_url("http://h").port,
            parse_url("http://h").database) == (8443, 8123, None)
    monkeypatch.chdir(tmp_path)
    assert parse_url("chdb://./data/ch").path == str(tmp_path / "data" / "ch")
    assert parse_url("chdb:///abs/dir/").path == "/abs/dir"


def test_chdb_path_that_is_a_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SinkConfigError, match="is not a directory"):
        connect(f"chdb://{tmp_path / 'file'}")


def test_unreachable_server_is_one_line_without_password():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(SinkConfigError, match="Connection refused") as info:
        connect(f"http://parcours:s3cret@127.0.0.1:{port}/analytics?connect_timeout=2")
    text = str(info.value)
    assert "\n" not in text and "s3cret" not in text
    assert f"cannot connect to ClickHouse at http://parcours@127.0.0.1:{port}/analytics" in text


def test_chdb_client_is_shared_per_process_and_reference_counted(tmp_path):
    url = f"chdb://{tmp_path / 'ch'}"
    first = connect(url)
    assert (tmp_path / "ch").is_dir()
    second = connect(f"chdb://{tmp_path / 'ch' / '.'}")  # another spelling of the same directory
    assert second is first
    first.command("CREATE TABLE kept (x UInt8) ENGINE = MergeTree ORDER BY x")
    first.insert("kept", [[7]], column_names=["x"])
    close(first)
    assert second.command("SELECT x FROM kept") == 7  # still open: one reference left
    with pytest.raises(SinkConfigError, match="already has the chDB directory .* open"):
        connect(f"chdb://{tmp_path / 'other'}")
    close(second)
    reopened = connect(url)  # closed with its last user: opens again, data persisted
    assert reopened is not first and reopened.command("SELECT x FROM kept") == 7
    # closed behind the cache's back (not through close()): forgotten, not an obstacle
    reopened.close()
    other = connect(f"chdb://{tmp_path / 'other'}")  # the engine can move once everything is closed
    close(other)


def test_engine_opened_elsewhere_in_this_process(tmp_path):
    import clickhouse_connect
    outside = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path / "a"))
    try:
        with pytest.raises(SinkConfigError,
                           match=r"already has the chDB directory '.*/a' open") as info:
            connect(f"chdb://{tmp_path / 'b'}")
        assert "\n" not in str(info.value)
        same = connect(f"chdb://{tmp_path / 'a'}")  # same directory: a second handle on the engine
        assert same.command("SELECT 1") == 1
        close(same)
    finally:
        outside.close()


def test_chdb_directory_locked_by_another_process(tmp_path):
    path = tmp_path / "ch"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, clickhouse_connect
            client = clickhouse_connect.get_client(interface="chdb", path={str(path)!r})
            client.command("CREATE TABLE kept (x UInt8) ENGINE = MergeTree ORDER BY x")
            client.insert("kept", [[7]], column_names=["x"])
            print("ready", flush=True)
            sys.stdin.read()  # hold the directory until killed
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()
        with pytest.raises(SinkConfigError) as info:
            connect(f"chdb://{path}")
        text = str(info.value)
        assert "\n" not in text
        assert (f"is in use by process {holder.pid}; only one process may open a chDB directory"
                in text)
        # What chDB itself says (behind our pre-check) is generic; the real reason ("Cannot lock
        # file <dir>/status") only goes to the C-level stderr. That error is mapped the same way.
        import clickhouse_connect
        with pytest.raises(Exception, match="Error initializing EmbeddedServer") as raw:
            clickhouse_connect.get_client(interface="chdb", path=str(path))
        assert (f"in use by process {holder.pid}"
                in str(clickhouse._chdb_failure(str(path), raw.value)))
    finally:
        holder.kill()  # a crash: the stale status file stays behind, unlocked
        holder.wait(timeout=20)
    assert (path / "status").exists() and clickhouse.lock_holder(str(path)) is None
    client = connect(f"chdb://{path}")
    assert client.command("SELECT x FROM kept") == 7  # what the crashed process inserted is there
    close(client)


# ---- writer: round trips and deduplication ----------------------------------------------------

def test_rows_round_trip_with_types(ch):
    paris = timezone(timedelta(hours=1))
    sink = ClickHouseSink(ch)
    sink.write("touchpoints", [
        {"event_id": "e-1", "event_time": T0, "profile_id": "p-1", "type": "price_view",
         "channel": "web", "campaign": "winter-suv", "publisher": None,
         "ids": {"cookie": "c-9", "email": "ab" * 32},
         "context": {"url": "https://brand.example/suv", "lat": 48.84},
         "properties": {"price": 32900.0}, "revenue": 0, "currency": "EUR"},
        {"event_id": "e-2", "event_time": datetime(2025, 11, 20, 9, 0, 0, 123456, tzinfo=paris),
         "profile_id": "p-1", "type": "purchase", "channel": "store", "ids": {"loyalty": "L-77"},
         "properties": '{"revenue": 32900.0}', "revenue": 32900.0, "currency": "EUR"},
    ])
    sink.write("identity_events", [{"at": T0, "kind": "merge", "survivor": "p-1",
                                    "absorbed": ["p-2"], "identifiers": ["cookie:c-9"],
                                    "event_id": "e-2", "reason": "loyalty"}])
    sink.write("triggers", [{"trigger_id": "t-1", "fired_at": T0, "profile_id": "p-1",
                             "moment": "near_store", "channel": "push", "event_id": "e-1",
                             "code": "XPGJRL",
                             "payload": {"store_id": "paris-15", "discount": 10, "none": None}}])
    sink.write("dead_letters", [{"error": "validation", "reason": "missing field 'event_id'",
                                 "topic": None, "partition": None, "offset": None,
                                 "original": "e30="}])
    assert sink.flush() == 5
    rows = ch.query("SELECT event_id, event_time, campaign, publisher, ids, context, properties, "
                    "revenue, currency, ingested_at FROM touchpoints ORDER BY event_id").result_rows
    e1, e2 = rows
    assert e1[1] == datetime(2025, 11, 20, 7, 15)  # naive UTC
    assert e2[1] == datetime(2025, 11, 20, 8, 0, 0, 123000)  # +01:00 -> UTC, millisecond precision
    assert (e1[2], e1[3], e2[2]) == ("winter-suv", None, None)
    assert e1[4] == {"cookie": "c-9", "email": "ab" * 32}
    assert json.loads(e1[5]) == {"url": "https://brand.example/suv", "lat": 48.84}
    assert (json.loads(e1[6]), json.loads(e2[6]), e2[5]) == ({"price": 32900.0},
                                                             {"revenue": 32900.0}, "{}")
    assert (e1[7], e2[7], e2[8]) == (0.0, 32900.0, "EUR")
    assert abs(e1[9] - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(minutes=1)
    assert ch.query("SELECT absorbed, identifiers FROM identity_events").result_rows == [
        (["p-2"], ["cookie:c-9"])]
    assert ch.query("SELECT payload FROM triggers").result_rows == [
        ({"store_id": "paris-15", "discount": "10"},)]
    assert ch.query("SELECT topic, partition, offset FROM dead_letters").result_rows == [
        ("", -1, -1)]


def test_malformed_row_is_refused_whole(ch):
    sink = ClickHouseSink(ch)
    good = credit_rows(1)[0]
    with pytest.raises(ValueError, match="attribution_credit: column 'credit': expected a number"):
        sink.write("attribution_credit", [good, {**good, "touchpoint_id": "e-x", "credit": "0.5"}])
    with pytest.raises(ValueError, match="column 'model' is missing"):
        sink.write("attribution_credit", [{k: v for k, v in good.items() if k != "model"}])
    with pytest.raises(ValueError, match="unknown table 'credits'"):
        sink.write("credits", [good])
    assert sink.pending == 0


def test_replayed_identical_batch_is_dropped_by_its_token(ch):
    rows = credit_rows(40)
    for _ in range(2):  # e.g. a worker restarted and replayed the same batch; computed_at differs
        writer = ClickHouseTableWriter(ch, "attribution_credit", max_rows=1000)
        writer.add(rows)
        assert writer.flush() == 40
    assert count(ch, "attribution_credit") == 40  # without FINAL: the second insert never landed
    touch = [{"event_id": f"e-{i}", "event_time": T0 + i, "profile_id": "p-1", "type": "click",
              "channel": "display"} for i in range(10)]
    # touchpoints: ingested_at is stamped at each write, and is left out of the token
    for _ in range(2):
        writer = ClickHouseTableWriter(ch, "touchpoints")
        writer.add(touch)
        writer.flush()
    assert count(ch, "touchpoints") == 10


def test_same_rows_in_another_split_collapse_under_final(ch):
    rows = credit_rows(30)
    first = ClickHouseTableWriter(ch, "attribution_credit", max_rows=10, max_age_s=3600)
    first.add(rows)
    first.flush()
    second = ClickHouseTableWriter(ch, "attribution_credit", max_rows=7, max_age_s=3600)
    second.add(rows)
    second.flush()
    assert count(ch, "attribution_credit") > 30  # different batches, different tokens: inserted
    # the ReplacingMergeTree key collapses them
    assert count(ch, "attribution_credit", final=True) == 30


def test_changed_row_with_same_key_is_not_mistaken_for_a_replay(ch):
    writer = ClickHouseTableWriter(ch, "identity_map")
    v1 = {"identifier_type": "cookie", "identifier": "c-9", "profile_id": "p-1", "updated_at": T0}
    v2 = {**v1, "profile_id": "p-2", "updated_at": T0 + 1000}
    for row in (v1, v2, v1):  # the last one is a stale replay of the first batch
        writer.add([row])
        writer.flush()
    # v2 landed although its key equals v1's; the replay did not
    assert count(ch, "identity_map") == 2
    assert ch.query("SELECT profile_id FROM identity_map FINAL").result_rows == [("p-2",)]
    writer.add([{**v2, "updated_at": T0 + 2000, "is_deleted": 1}])  # forgotten
    writer.flush()
    assert count(ch, "identity_map", final=True) == 0


def test_database_failure_keeps_rows_until_it_recovers(ch):
    from sinks.migrations import _EXPERIMENTS_V4, _TRIGGERS, _TRIGGERS_V2
    errors = []
    sink = ClickHouseSink(ch, max_attempts=2, sleep=lambda s: None,
                          on_error=lambda table, exc: errors.append(table))
    ch.command("DROP TABLE triggers")  # e.g. an operator mistake, or a server that lost the table
    sink.write("triggers", [{"trigger_id": f"t-{i}", "fired_at": T0, "profile_id": "p-1",
                             "moment": "near_store", "channel": "push"} for i in range(3)])
    with pytest.raises(SinkError, match=r"sink 'triggers': writing 3 rows failed after "
                                        r"2 attempt\(s\): .*triggers"):
        sink.flush()
    assert sink.pending == 3 and errors == ["triggers", "triggers"]
    for statement in [_TRIGGERS, *_TRIGGERS_V2, *_EXPERIMENTS_V4]:
        ch.command(statement)
    assert sink.flush() == 3
    assert count(ch, "triggers") == 3


def test_attribution_daily_view_sums_without_double_counting(ch):
    day2 = T0 + 86_400_000
    rows = []
    for conversion, at, revenue, split in (("c-1", T0, 100.0, {"email": 0.5, "display": 0.5}),
                                           ("c-2", T0, 50.0, {"email": 1.0}),
                                           ("c-3", day2, 80.0, {"email": 0.25, "display": 0.75})):
        for channel, credit in split.items():
            rows.append({"conversion_id": conversion, "conversion_time": at, "profile_id": "p-1",
                         "model": "linear", "touchpoint_id": f"{conversion}-{channel}",
                         "touchpoint_time": at - 5, "channel": channel, "campaign": "winter-suv",
                         "publisher": "autonews.example", "credit": credit,
                         "revenue_credit": credit * revenue})
    sink = ClickHouseSink(ch, max_rows=2)
    sink.write("attribution_credit", rows)
    sink.flush()
    sink.write("attribution_credit", rows[1:])  # replayed in another split: duplicates until merged
    sink.flush()
    got = ch.query("SELECT day, channel, conversions, revenue, touches FROM attribution_daily "
                   "WHERE model = 'linear' ORDER BY day, channel").result_rows
    d1, d2 = (datetime.fromtimestamp(T0 / 1000, timezone.utc).date(),
              datetime.fromtimestamp(day2 / 1000, timezone.utc).date())
    assert got == [(d1, "display", 0.5, 50.0, 1), (d1, "email", 1.5, 100.0, 2),
                   (d2, "display", 0.75, 60.0, 1), (d2, "email", 0.25, 20.0, 1)]


def test_sink_is_usable_from_threads_and_closes(ch):
    sink = ClickHouseSink(ch, max_rows=50, max_age_s=3600)

    def produce(worker: int) -> None:
        for batch in range(10):
            sink.write("touchpoints", [{"event_id": f"w{worker}-b{batch}-{i}", "event_time": T0 + i,
                                        "profile_id": "p-1", "type": "click", "channel": "display"}
                                       for i in range(20)])
            sink.maybe_flush()

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    assert count(ch, "touchpoints", final=True) == 800
    assert sink.stats()["touchpoints"]["rows_written"] == 800
    with pytest.raises(SinkError, match="closed"):
        sink.write("touchpoints", [])
