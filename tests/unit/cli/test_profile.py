"""`parcours profile` and `parcours traits rfm` over a replayed simulation in real chDB.

One replay per module: the simulated population with the Martin journey (as `parcours simulate
--profiles 200` writes it) plus one identify event of Martin's after his purchase (declared
traits, and a touchpoint of his open journey), replayed into chDB by `parcours replay`."""
from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest

from sinks.clickhouse import close, connect
from streams import simulate
from streams.ingest.pii import hash_identifier
from streams.simulate.martin import MARTIN_EMAIL
from streams.traits.model import DAY_MS
from tests.unit.cli.test_cli import one_line_error, run

START = datetime(2026, 11, 2, tzinfo=timezone.utc)  # `parcours simulate`'s default start
IDENTIFY = {"event_id": "martin-12", "event_time": "2026-11-06T09:00:00+00:00",
            "type": "identify", "channel": "web", "ids": {"loyalty": "L-77"},
            "properties": {"traits": {"persona": "family_suv", "topics": ["electric", "towing"]}}}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("profile")
    journeys = base / "journeys.jsonl"
    martin = [*simulate.martin_journey(START), IDENTIFY]
    simulate.write_jsonl(simulate.in_time_order(
        martin, simulate.Population(profiles=200, seed=7, start=START).events()), journeys)
    url = f"chdb://{base / 'ch'}"
    done = run("replay", str(journeys), "--clickhouse", url, "--out", str(base / "out"))
    assert done.returncode == 0, done.stderr
    identity = {(r["type"], r["value"]): r["profile_id"] for r in map(
        orjson.loads, (base / "out" / "identity.jsonl").read_bytes().splitlines())}
    return {"url": url, "dir": base / "ch", "base": base, "identity": identity}


@pytest.fixture
def client(replayed):
    """An in-process client on the replayed database, closed after the test: one process at a
    time may open a chDB directory, and the commands run in their own."""
    c = connect(replayed["url"])
    yield c
    close(c)


def _view(replayed, identifier: str) -> dict:
    proc = run("profile", "--identifier", identifier, "--format", "json",
               "--clickhouse", replayed["url"])
    assert proc.returncode == 0, proc.stderr
    return orjson.loads(proc.stdout)


def test_martin_as_json(replayed):
    view = _view(replayed, "loyalty:L-77")
    assert view["profile_id"] == replayed["identity"][("loyalty", "L-77")]
    ids = {(i["type"], i["value"]) for i in view["identifiers"]}
    assert {("loyalty", "L-77"), ("email", hash_identifier("email", MARTIN_EMAIL)),
            ("cookie", "c-9"), ("device", "d-1"), ("user", "u-42")} <= ids
    traits = view["traits"]
    assert list(traits)[:8] == ["first_seen", "last_seen", "purchases", "revenue",
                                "last_purchase_at", "lifecycle", "top_channel", "rfm"]
    assert traits["lifecycle"] == "customer"
    assert traits["purchases"] == 1 and traits["revenue"] == 32900.0
    assert traits["last_purchase_at"] == "2026-11-05T10:30:00.000Z"  # martin-11, 11:30 Paris
    assert traits["first_seen"] == "2026-11-02T00:00:00.000Z"
    assert traits["last_seen"] == "2026-11-06T09:00:00.000Z"
    assert traits["rfm"]["score"] == "515" and traits["rfm"]["r"] == 5
    assert traits["persona"] == "family_suv" and traits["topics"] == ["electric", "towing"]
    assert "big_spenders" in view["audiences"]
    assert [h["stage"] for h in view["lifecycle_history"]] == ["known", "customer"]
    assert view["lifecycle_history"][1]["since"] == traits["last_purchase_at"]
    assert view["consent"]["push"] is True and view["consent"]["email"] is False
    rules = [t["rule"] for t in view["triggers"]]
    assert "near_store_offer" in rules
    offer = view["triggers"][rules.index("near_store_offer")]
    assert (offer["channel"], offer["code"], offer["event_id"]) == ("push", "XPGJRL",
                                                                    "martin-08")
    times = [t["at"] for t in view["triggers"]]
    assert times == sorted(times, reverse=True)  # newest first
    assert all({"at", "rule", "channel", "reason"} <= set(s) for s in view["suppressions"])
    assert view["last_conversion"] == {"event_id": "martin-11", "type": "purchase",
                                       "at": "2026-11-05T10:30:00.000Z"}
    assert [j["event_id"] for j in view["journey"]] == ["martin-12"]


def test_an_email_is_hashed_as_ingest_hashes_it(replayed):
    pid = replayed["identity"][("loyalty", "L-77")]
    assert _view(replayed, "email:  Martin@Example.com ")["profile_id"] == pid
    hashed = hash_identifier("email", MARTIN_EMAIL)
    assert _view(replayed, f"email:{hashed.upper()}")["profile_id"] == pid  # kept, lower-cased


def test_the_table_form(replayed):
    proc = run("profile", "--identifier", "loyalty:L-77", "--clickhouse", replayed["url"])
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for fragment in ("customer", "big_spenders", "known since 2026-11-02 00:00 UTC",
                     "customer since 2026-11-05 10:30 UTC", "near_store_offer", "XPGJRL",
                     "push yes", "martin-12", "family_suv", "515 (R 5, F 1, M 5)"):
        assert fragment in out, fragment


def test_an_identifier_no_profile_holds_is_one_line_exit_1(replayed):
    for identifier, shown in (("loyalty:L-00000", "loyalty L-00000"),
                              ("email:nobody@example.com", "email ")):
        proc = run("profile", "--identifier", identifier, "--clickhouse", replayed["url"])
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("parcours: no profile holds "), lines
        assert shown in lines[0] and "nobody@" not in lines[0]  # a raw address is not echoed


@pytest.mark.parametrize("identifier, fragment", [
    ("L-77", "expected TYPE:VALUE"),
    ("email:not-an-address", "not a valid email"),
    ("phone:12", "not a valid phone"),
    ("loyalty card:L-77", "not an identifier type"),
])
def test_a_bad_identifier_is_one_line_exit_2(replayed, identifier, fragment):
    one_line_error(run("profile", "--identifier", identifier, "--clickhouse", replayed["url"]),
                   fragment)


def test_a_bad_clickhouse_url_is_one_line_exit_2():
    one_line_error(run("profile", "--identifier", "loyalty:L-77", "--clickhouse",
                       "mysql://db:3306/x"), "unknown scheme")


def test_the_journey_takes_older_profile_ids_and_keeps_the_newest(client, replayed):
    from streams.cli.profile import _journey, profile_view

    view = profile_view(client, "loyalty", "L-77")
    keys = [f"{i['type']}:{i['value']}" for i in view["identifiers"]]
    pid = view["profile_id"]
    stitched = dict(client.query(
        "SELECT event_id, profile_id FROM touchpoints FINAL WHERE startsWith(event_id, 'martin')"
    ).result_rows)
    assert any(p != pid for p in stitched.values())  # stitched before a merge renamed him
    everything = [j["event_id"] for j in _journey(client, pid, keys, None, 20)]
    assert everything == [f"martin-{i:02d}" for i in range(1, 13)]
    assert [j["event_id"] for j in _journey(client, pid, keys, None, 3)] == [
        "martin-10", "martin-11", "martin-12"]  # the newest, oldest first
    # a profile with no conversion: its whole journey, at most 20, in time order
    (other,), = client.query(
        "SELECT profile_id FROM profile_traits FINAL WHERE is_deleted = 0 AND purchases = 0 "
        "AND lifecycle = 'known' AND profile_id NOT IN (SELECT profile_id FROM touchpoints "
        "FINAL WHERE type IN ('purchase', 'lead')) ORDER BY profile_id LIMIT 1").result_rows
    (kind, value), = client.query(
        "SELECT identifier_type, identifier FROM identity_map FINAL WHERE profile_id = {p:String} "
        "AND is_deleted = 0 ORDER BY identifier_type LIMIT 1", parameters={"p": other}).result_rows
    theirs = profile_view(client, kind, value)
    assert theirs["profile_id"] == other and theirs["last_conversion"] is None
    assert 0 < len(theirs["journey"]) <= 20
    assert [j["at"] for j in theirs["journey"]] == sorted(j["at"] for j in theirs["journey"])
    assert theirs["traits"]["rfm"] is None and theirs["traits"]["lifecycle"] == "known"


def test_traits_rfm_prints_a_pack_block(replayed):
    from streams.traits.rfm import from_values

    proc = run("traits", "rfm", "--clickhouse", replayed["url"])
    assert proc.returncode == 0, proc.stderr
    as_json = run("traits", "rfm", "--format", "json", "--clickhouse", replayed["url"])
    assert as_json.returncode == 0, as_json.stderr
    client = connect(replayed["url"])  # after the commands: one process at a time
    try:
        rows = client.query(
            "SELECT toUnixTimestamp64Milli(last_purchase_at), purchases, revenue "
            "FROM profile_traits FINAL WHERE is_deleted = 0 AND purchases > 0").result_rows
        (as_of,), = client.query("SELECT max(toUnixTimestamp64Milli(as_of)) FROM "
                                 "profile_traits FINAL WHERE is_deleted = 0").result_rows
    finally:
        close(client)
    expected = from_values(as_of, rows)  # the same quantiles, computed here on plain numbers
    assert expected.rfm.source == f"ClickHouse quintiles of {len(rows)} customers, 2026-11-15"
    assert expected.yaml() in proc.stdout
    assert proc.stdout.startswith("# ")
    data = orjson.loads(as_json.stdout)
    assert data["customers"] == len(rows) >= 5
    assert data["recency_ms"] == [d * DAY_MS for d in map(lambda s: int(s[:-1]),
                                                          data["recency"])]
    for axis in ("recency_ms", "frequency", "monetary"):
        assert data[axis] == sorted(set(data[axis])), axis  # strictly ascending


def test_traits_rfm_with_too_few_customers_is_one_line_exit_1(tmp_path):
    proc = run("traits", "rfm", "--clickhouse", f"chdb://{tmp_path / 'empty'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == ["parcours: 0 customers in profile_traits: RFM quintiles need at least 5"]
