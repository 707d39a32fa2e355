"""The traits stage's tables in a real chDB engine: `profile_traits` (one live row per profile under
FINAL), `audience_membership` (one row per record), the `audience_members` view, their erasure,
and `parcours replay --clickhouse` filling them as its files say."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from sinks.clickhouse import close, connect
from sinks.erasure import erase
from sinks.migrations import MIGRATIONS, applied_versions, migrate
from sinks.tables import TABLES
from sinks.writer import ClickHouseSink
from streams.traits.records import deleted_row, traits_row, transition
from streams.worker.outputs import rows_of

T0 = 1763622900000  # 2025-11-20T07:15:00Z in epoch ms
HOUR = 3_600_000
TRAITS = TABLES["profile_traits"]
MEMBERSHIP = TABLES["audience_membership"]


@pytest.fixture
def ch(ch_url):
    client = connect(ch_url())
    migrate(client)
    yield client
    close(client)


def write(client, kind: str, items: list[dict], now_ms: int = T0) -> None:
    """Rows as the worker's sink stage and replay build them (`rows_of`), through the sink."""
    sink = ClickHouseSink(client)
    sink.write({"traits": "profile_traits", "audiences": "audience_membership"}[kind],
               rows_of(kind, items, now_ms))
    sink.flush()


def state(created_by: str, version: int, at: int = T0, **extra) -> dict:
    """A traits record as the stage keeps it (streams/traits/stage.py)."""
    return {"b": created_by, "fs": T0 - HOUR, "ls": at, "at": at, "v": version,
            "lc": [[T0 - HOUR, "anonymous"], [at, "customer"]], "a": ["big_spenders"],
            "d": {"size": ("M", at, "e-1")}, **extra}


def values(purchases: int, last_purchase_at: int | None = None) -> dict:
    return {"purchases": purchases, "revenue": 49.5 * purchases,
            "last_purchase_at": last_purchase_at, "lifecycle": "customer" if purchases else "known",
            "top_channel": "email", "rfm": "511" if purchases else None,
            "rfm.r": 5 if purchases else None, "rfm.f": 1 if purchases else None,
            "rfm.m": 1 if purchases else None}


def ms_columns(table) -> str:
    """The table's columns in insert order, times as epoch ms (what the pipeline's rows hold)."""
    return ", ".join(f"toUnixTimestamp64Milli({name})" if kind in ("time", "time?") else name
                     for name, kind in table.columns)


# ---- migration 5 -------------------------------------------------------------------------------

def test_migration_5_applies_on_a_fresh_database(ch):
    assert 5 in applied_versions(ch)
    kinds = dict(ch.query("SELECT name, engine FROM system.tables "
                          "WHERE database = currentDatabase()").result_rows)
    assert kinds["profile_traits"] == kinds["audience_membership"] == "ReplacingMergeTree"
    assert kinds["audience_members"] == "View"
    assert migrate(ch) == []


def test_migration_5_applies_on_a_database_at_migration_4(ch_url):
    client = connect(ch_url("at-4"))
    try:
        assert migrate(client, [m for m in MIGRATIONS if m[0] <= 4]) == [1, 2, 3, 4]
        assert not client.query("EXISTS TABLE profile_traits").result_rows[0][0]
        assert migrate(client) == [5]
        assert applied_versions(client) == {v for v, _, _ in MIGRATIONS}
        assert int(client.command("SELECT count() FROM audience_members")) == 0
    finally:
        close(client)


# ---- profile_traits ----------------------------------------------------------------------------

def test_profile_traits_final_keeps_one_live_row_per_profile(ch):
    bought = T0 + HOUR
    older = [traits_row("p-1", state("e-1", 1), values(0), {"email": False, "sms": True}),
             traits_row("p-2", state("e-2", 1), values(0), {}),
             traits_row("p-3", state("e-3", 4), values(0), {})]
    newer = [traits_row("p-1", state("e-1", 2, bought), values(1, bought), {"email": True}),
             deleted_row("p-2", state("e-2", 1)),  # merged into another profile: version 2
             deleted_row("p-3", state("e-3", 4)),  # the same, at version 5; then p-3 used again:
             traits_row("p-3", state("e-9", 1), values(0), {})]  # a new record, apart
    write(ch, "traits", newer)
    write(ch, "traits", older, now_ms=T0 + 5 * HOUR)  # later writes of older versions lose
    write(ch, "traits", newer, now_ms=T0 + 9 * HOUR)  # a batch sent again, newly stamped:
    assert int(ch.command("SELECT count() FROM profile_traits")) == 7  # dropped by its token
    write(ch, "traits", newer[:1], now_ms=T0 + 9 * HOUR)  # a row again in another batch
    assert int(ch.command("SELECT count() FROM profile_traits")) == 8
    # the deleted records' newest rows are deleted ones: FINAL (and is_deleted = 0) drop them
    assert int(ch.command("SELECT count() FROM profile_traits FINAL")) == 2
    live = ch.query(f"SELECT {ms_columns(TRAITS)} FROM profile_traits FINAL "
                    "WHERE is_deleted = 0 ORDER BY profile_id").result_rows
    assert [row[:2] for row in live] == [("p-1", "e-1"), ("p-3", "e-9")]
    expected = TRAITS.to_row(rows_of("traits", newer[:1], T0)[0])
    assert live[0][:-1] == expected[:-1]  # updated_at: whichever write of version 2 was kept
    p1 = dict(zip(TRAITS.column_names, live[0]))
    assert (p1["last_purchase_at"], p1["purchases"], p1["revenue"]) == (bought, 1, 49.5)
    assert p1["consent"] == {"email": 1} and p1["declared"] == {"size": '"M"'}
    assert orjson.loads(p1["lifecycle_history"]) == [[T0 - HOUR, "anonymous"],
                                                     [bought, "customer"]]
    p3 = dict(zip(TRAITS.column_names, live[1]))
    assert (p3["last_purchase_at"], p3["rfm"], p3["rfm_r"]) == (None, "", 0)


def test_a_nullable_time_and_an_int_map_are_checked():
    row = rows_of("traits", [traits_row("p", state("e", 1), values(0), {"web": True})], T0)[0]
    assert TRAITS.to_row({**row, "last_purchase_at": datetime(2025, 11, 20, 7, 15,
                                                              tzinfo=timezone.utc)})[6] == T0
    assert TRAITS.to_row({**row, "consent": {"web": 1, "sms": None}})[16] == {"web": 1}
    with pytest.raises(ValueError, match="column 'consent': expected a mapping of int"):
        TRAITS.to_row({**row, "consent": {"web": True}})
    mixed = [row, {**row, "last_purchase_at": T0}, {**row, "consent": {"web": 0, 3: 1}},
             {**row, "last_purchase_at": datetime(2025, 11, 20, 7, 15, tzinfo=timezone.utc)}]
    assert list(zip(*TRAITS.to_columns(mixed))) == [TRAITS.to_row(r) for r in mixed]
    with pytest.raises(ValueError, match="column 'last_purchase_at'"):
        TRAITS.to_row({**row, "last_purchase_at": "yesterday"})


# ---- audience_membership and audience_members ----------------------------------------------------

class Profile:
    """A profile's audience records as the traits stage makes them (ids, seq)."""

    def __init__(self, pid: str):
        self.pid, self.st = pid, {"b": f"e-{pid}"}

    def enter(self, audience: str, at: int, event_id: str | None = "e", cause: str = "event"):
        return transition(self.pid, self.st, audience, True, at, event_id, cause)

    def leave(self, audience: str, at: int, event_id: str | None = None, cause: str = "time"):
        return transition(self.pid, self.st, audience, False, at, event_id, cause)


def test_audience_membership_keeps_a_record_written_twice_once(ch):
    a = Profile("a")
    first, second = a.enter("vip", T0), a.leave("vip", T0 + HOUR)
    write(ch, "audiences", [first])
    write(ch, "audiences", [first, second], now_ms=T0 + HOUR)  # replayed with the next batch
    assert int(ch.command("SELECT count() FROM audience_membership")) == 3
    rows = ch.query(f"SELECT {ms_columns(MEMBERSHIP)} FROM audience_membership FINAL "
                    "ORDER BY seq").result_rows
    assert [row[:-1] for row in rows] == [
        (r["record_id"], r["kind"], "vip", "a", r["at"], r["event_id"] or "", r["cause"], r["seq"])
        for r in (first, second)]


def test_an_erasure_exit_is_not_written(ch):
    a = Profile("a")
    write(ch, "audiences", [a.enter("vip", T0), a.leave("vip", T0 + HOUR, cause="forget")])
    assert ch.query("SELECT profile_id, kind FROM audience_membership").result_rows == [
        ("a", "audience_entered")]


def test_audience_members_are_the_profiles_whose_newest_record_entered(ch):
    a, b, c, d, e = (Profile(x) for x in "abcde")
    records = [
        a.enter("vip", T0), a.leave("vip", T0 + HOUR),  # entered then exited: not a member
        b.enter("vip", T0 + 2 * HOUR),  # a member since its entry
        c.enter("vip", T0), c.leave("vip", T0 + HOUR), c.enter("vip", T0 + 3 * HOUR),
        d.enter("vip", T0), d.enter("lapsed", T0 + HOUR, None, "time"),
        e.enter("vip", T0), e.leave("vip", T0, "e"),  # the same time: seq orders them
    ]
    write(ch, "audiences", records[::-1])  # the order of the rows does not matter
    members = ch.query("SELECT audience, profile_id, toUnixTimestamp64Milli(since) "
                       "FROM audience_members ORDER BY audience, profile_id").result_rows
    assert members == [("lapsed", "d", T0 + HOUR), ("vip", "b", T0 + 2 * HOUR),
                       ("vip", "c", T0 + 3 * HOUR), ("vip", "d", T0)]


# ---- erasure -----------------------------------------------------------------------------------

def test_erasure_removes_the_profiles_traits_and_audience_rows(ch):
    gone, kept = Profile("p-gone"), Profile("p-kept")
    write(ch, "traits", [traits_row("p-gone", state("e-1", 1), values(0), {}),
                         traits_row("p-kept", state("e-2", 1), values(0), {})])
    write(ch, "audiences", [gone.enter("vip", T0), gone.leave("vip", T0 + 1),
                            kept.enter("vip", T0)])
    matched = erase(ch, ["p-gone"], [])
    assert (matched["profile_traits"], matched["audience_membership"]) == (1, 2)
    assert ch.query("SELECT profile_id FROM profile_traits").result_rows == [("p-kept",)]
    assert ch.query("SELECT DISTINCT profile_id FROM audience_membership").result_rows == [
        ("p-kept",)]


# ---- parcours replay --clickhouse -------------------------------------------------------------

def _lines(path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_replay_fills_profile_traits_and_audience_membership_as_its_files_say(tmp_path, ch_url):
    from streams.cli import main

    journeys, out, url = tmp_path / "journeys.jsonl", tmp_path / "out", ch_url()
    assert main(["simulate", "--profiles", "200", "--out", str(journeys)]) == 0
    assert main(["replay", str(journeys), "--out", str(out), "--clickhouse", url]) == 0
    last: dict[tuple, dict] = {}
    for row in _lines(out / "profile_traits.jsonl"):  # every row written, in order
        last[row["profile_id"], row["created_by"]] = row
    live = sorted((TRAITS.to_row({**row, "updated_at": 0})[:-1] for row in last.values()
                   if not row["is_deleted"]))
    records = _lines(out / "audiences.jsonl")
    written = [r for r in records if r["cause"] != "forget"]
    newest: dict[tuple, dict] = {}
    for r in written:
        key = (r["audience"], r["profile_id"])
        if key not in newest or (r["at"], r["seq"]) > (newest[key]["at"], newest[key]["seq"]):
            newest[key] = r
    client = connect(url)
    try:
        got = client.query(f"SELECT {ms_columns(TRAITS)} FROM profile_traits FINAL "
                           "WHERE is_deleted = 0 ORDER BY profile_id").result_rows
        assert live and sorted(row[:-1] for row in got) == live
        assert len({row[0] for row in got}) == len(got)  # one row per live profile
        got = client.query(f"SELECT {ms_columns(MEMBERSHIP)} FROM audience_membership FINAL"
                           ).result_rows
        assert written and sorted(row[:-1] for row in got) == sorted(
            MEMBERSHIP.to_row({**r, "event_id": r["event_id"] or ""})[:-1] for r in written)
        members = client.query("SELECT audience, profile_id, toUnixTimestamp64Milli(since) "
                               "FROM audience_members").result_rows
        assert sorted(members) == sorted((*key, r["at"]) for key, r in newest.items()
                                         if r["kind"] == "audience_entered")
    finally:
        close(client)
