"""Hand-made examples of the traits against their definitions: time passing (the lapse, every
RFM cut, the top-channel window), declared traits out of order, merges (a shared order counted
once, as its earliest report), and an erasure."""
from __future__ import annotations

import orjson
import pytest

from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.pipeline import Emitted
from tests.unit.traits.reference import (
    COMPARED,
    CUSTOM,
    CUSTOM_SPEC,
    DAY,
    DEFAULT,
    DEFAULT_SPEC,
    ENTERED,
    EXITED,
    HOUR,
    MINUTE,
    T0,
    check,
    current_rows,
    key_of,
    run,
)


# -- hand-made examples ---------------------------------------------------------------------------
def ev(event_id: str, t: int, kind: str, ids: dict, channel: str = "web", url: str | None = None,
       **properties) -> dict:
    event = {"event_id": event_id, "event_time": t, "type": kind, "channel": channel, "ids": ids}
    if url is not None:
        event["context"] = {"url": url}
    if properties:
        event["properties"] = properties
    return event


def _rows(out: Emitted) -> dict[str, dict]:
    return {pid: row for (pid, _b), row in current_rows(out).items()}


def _records(out: Emitted, pid: str) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["audience"], r["cause"]) for r in out.audiences if r["profile_id"] == pid]


def test_time_passes_lapse_rfm_cuts_and_the_top_channel_window():
    events = [
        ev("k1", T0, "impression", {"cookie": "k1", "email": "k@example.com"}, "display"),
        ev("k2", T0 + DAY, "purchase", {"cookie": "k1"}, order_id="o1", revenue=120),
        ev("k3", T0 + 2 * DAY, "click", {"cookie": "k1"}, "search"),
        ev("k4", T0 + 2 * DAY + HOUR, "click", {"cookie": "k1"}, "search"),
        ev("z1", T0 + 400 * DAY, "page_view", {"cookie": "z9"}, url="https://shop.example/"),
    ]
    pipeline, out = run(events, DEFAULT)
    live = check(events, pipeline, out, DEFAULT_SPEC)
    k = live[pipeline.identity.profile_of("cookie:k1")]
    # every cut passed: the last one (365 days after the purchase) is the row's as_of
    assert k["as_of"] == T0 + 366 * DAY
    assert (k["lifecycle"], k["top_channel"], k["rfm"]) == ("lapsed", "", "112")
    assert k["lifecycle_history"] == [[T0, "known"], [T0 + DAY, "customer"],
                                      [T0 + 181 * DAY, "lapsed"]]
    assert k["audiences"] == ["lapsed_customers"]
    assert _records(out, k["profile_id"]) == [(ENTERED, "lapsed_customers", "time")]
    z = live[pipeline.identity.profile_of("cookie:z9")]
    assert (z["as_of"], z["lifecycle"], z["top_channel"]) == (T0 + 400 * DAY, "anonymous", "")


def test_declared_traits_the_newest_by_event_time_wins_whatever_the_arrival_order():
    ids = {"user": "u7"}
    events = [
        ev("d1", T0, "identify", ids, traits={"persona": "early", "favourite_store": "s1"}),
        ev("d3", T0 + 4 * MINUTE, "identify", ids, traits={"persona": "newest"}),
        ev("d2", T0 + 2 * MINUTE, "identify", ids, traits={"persona": "middle"}),  # late, in time
        ev("d4", T0 + 4 * MINUTE, "identify", ids, traits={"favourite_store": "s2"}),  # same time
        ev("d5", T0 + HOUR, "page_view", ids, url="https://shop.example/"),
    ]
    pipeline, out = run(events, CUSTOM)
    live = check(events, pipeline, out, CUSTOM_SPEC)
    row = live[pipeline.identity.profile_of("user:u7")]
    assert row["declared"] == {"favourite_store": '"s2"', "persona": '"newest"'}
    assert row["lifecycle"] == "known" and row["audiences"] == ["quiet"]


def test_a_merge_counts_a_shared_order_once_and_deletes_the_absorbed_profile():
    a, b = {"cookie": "c1"}, {"email": "e1@example.com"}
    first = [
        ev("a1", T0, "page_view", a, "search", url="https://shop.example/?utm_source=g"),
        ev("a2", T0 + HOUR, "purchase", a, order_id="o1", revenue=300),
        ev("a3", T0 + 2 * HOUR, "identify", a, traits={"persona": "old", "favourite_store": "s1"}),
        ev("b1", T0 + DAY, "purchase", b, order_id="o1", revenue=300),  # o1 again, from the store
        ev("b2", T0 + 2 * DAY, "purchase", b, order_id="o2", revenue=250),
        ev("b3", T0 + 3 * DAY, "identify", b, traits={"persona": "new"}),
    ]
    merge = ev("m1", T0 + 4 * DAY, "email_open", {**a, **b}, "email")
    pipeline, out = run([*first, merge], DEFAULT, cuts=[len(first)])
    live = check([*first, merge], pipeline, out, DEFAULT_SPEC)
    survivor = pipeline.identity.profile_of("cookie:c1")
    [merged] = [e for e in out.identity if e["kind"] == "merge"]
    assert merged["survivor"] == survivor
    [absorbed] = merged["absorbed"]
    assert pipeline.identity.profile_of(key_of("email", "e1@example.com")) == survivor

    row = live[survivor]
    assert {name: row[name] for name in COMPARED} == {
        "first_seen": T0, "last_seen": T0 + 4 * DAY, "purchases": 2, "revenue": 550.0,
        "last_purchase_at": T0 + 2 * DAY, "lifecycle": "repeat", "top_channel": "email",
        "rfm": "523", "rfm_r": 5, "rfm_f": 2, "rfm_m": 3,
        "declared": {"favourite_store": '"s1"', "persona": '"new"'},
        "audiences": ["big_spenders", "repeat_customers"]}
    assert row["as_of"] == T0 + 4 * DAY
    # the absorbed profile had its own row (the first batch), now deleted; its state is gone
    assert [r["is_deleted"] for r in out.traits if r["profile_id"] == absorbed][0] == 0
    assert _rows(out)[absorbed]["is_deleted"] == 1
    assert absorbed not in pipeline.states["traits"].backing
    assert _records(out, absorbed) == [
        (ENTERED, "big_spenders", "event"), (ENTERED, "repeat_customers", "event"),
        (EXITED, "big_spenders", "merge"), (EXITED, "repeat_customers", "merge")]
    assert _records(out, survivor) == [
        (ENTERED, "big_spenders", "merge"), (ENTERED, "repeat_customers", "merge")]


def test_forget_leaves_no_row_no_state_and_exits_the_audiences():
    ids = {"cookie": "c7", "email": "f@example.com"}
    events = [
        ev("f1", T0, "page_view", {"cookie": "c7"}, url="https://shop.example/"),
        ev("f2", T0 + HOUR, "purchase", ids, order_id="o9", revenue=700),
        ev("f3", T0 + 2 * HOUR, "click", {"cookie": "c7"}, "display"),
    ]
    pipeline, out = run(events, DEFAULT)
    pid = pipeline.identity.profile_of("cookie:c7")
    assert check(events, pipeline, out, DEFAULT_SPEC)[pid]["audiences"] == ["big_spenders"]
    assert any(v.get("p") == pid for v in pipeline.states["timers"].backing.values())

    gone = pipeline.forget(key_of("email", "f@example.com"), request_id="req-1")
    assert [e["kind"] for e in gone.identity] == ["forget"]
    assert gone.traits == []
    assert [(r["kind"], r["audience"], r["profile_id"], r["cause"], r["event_id"])
            for r in gone.audiences] == [(EXITED, "big_spenders", pid, "forget", None)]
    assert pid not in pipeline.states["traits"].backing
    assert pipeline.traits.current(pid) == {}
    assert not any(v.get("p") == pid for v in pipeline.states["timers"].backing.values())

    # the person comes back: a new record, from nothing
    again = ev("f4", T0 + 3 * HOUR, "page_view", {"email": "f@example.com"},
               url="https://shop.example/")
    raws = [(orjson.dumps(again), "file", None, len(events) + 1)]
    good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET, now_ms=T0 + DAY)
    assert not dead
    later = Emitted()
    later.extend(pipeline.process(good))
    later.extend(pipeline.end_of_input())
    new_pid = pipeline.identity.profile_of(key_of("email", "f@example.com"))
    row = _rows(later)[new_pid]
    assert (row["created_by"], row["purchases"], row["revenue"], row["lifecycle"],
            row["first_seen"], row["audiences"]) == ("f4", 0, 0.0, "known", T0 + 3 * HOUR, [])


# -- an order reported by two profiles that then merge ------------------------------------------
def _one_order_twice(revenues: tuple[float, float], survivor_first: bool) -> tuple[list, list]:
    """The order o1 reported at T0+1d and at T0+2d, by two profiles that merge at T0+3d (the
    cookie's profile, first seen at T0, survives), and the same events with every report carrying
    the cookie (one profile all along)."""
    a, b = {"cookie": "c1"}, {"email": "e1@example.com"}
    early, late = (a, b) if survivor_first else (b, a)
    merged = [
        ev("x0", T0, "page_view", a, url="https://shop.example/"),
        ev("x1", T0 + DAY, "purchase", early, order_id="o1", revenue=revenues[0]),
        ev("x2", T0 + 2 * DAY, "purchase", late, order_id="o1", revenue=revenues[1]),
        ev("x3", T0 + 3 * DAY, "page_view", {**a, **b}, url="https://shop.example/"),
    ]
    alone = [{**e, "ids": {**a, **b}} if e["type"] == "purchase" else e for e in merged]
    return merged, alone


@pytest.mark.parametrize("survivor_first", [True, False])
def test_one_profile_all_along_counts_an_order_reported_twice_by_its_first_report(survivor_first):
    _merged, alone = _one_order_twice((200.0, 150.0), survivor_first)
    pipeline, out = run(alone, DEFAULT)
    row = check(alone, pipeline, out, DEFAULT_SPEC)[pipeline.identity.profile_of("cookie:c1")]
    assert (row["purchases"], row["revenue"], row["last_purchase_at"]) == (1, 200.0, T0 + DAY)


def test_a_merge_keeps_the_first_report_time_of_an_order_both_profiles_saw():
    # same revenue: only last_purchase_at differs (T0+2d, the absorbed profile's duplicate)
    merged, _alone = _one_order_twice((100.0, 100.0), survivor_first=True)
    pipeline, out = run(merged, DEFAULT)
    row = _rows(out)[pipeline.identity.profile_of("cookie:c1")]
    assert (row["purchases"], row["revenue"], row["last_purchase_at"]) == (1, 100.0, T0 + DAY)


def test_a_merge_keeps_the_first_report_revenue_of_an_order_both_profiles_saw():
    # the absorbed profile reported o1 first (200), the survivor later (150): 150 and T0+2d kept
    merged, _alone = _one_order_twice((200.0, 150.0), survivor_first=False)
    pipeline, out = run(merged, DEFAULT)
    row = _rows(out)[pipeline.identity.profile_of("cookie:c1")]
    assert (row["purchases"], row["revenue"], row["last_purchase_at"]) == (1, 200.0, T0 + DAY)
