"""Each rule construct on hand-written journeys, through the pure pipeline (no broker).

Events go through `ingest_batch` (as the worker does), carry their input partition, and the
pipeline runs identity, attribution, the moment engine and the preferences gate. Times are Paris
local unless noted; the default pack's quiet hours are 21:00-08:00.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from streams.ingest import SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default, load_pack_text
from streams.pipeline import Emitted, Pipeline

PARIS = ZoneInfo("Europe/Paris")
DAY = datetime(2026, 11, 18, tzinfo=PARIS)
NEAR_PARIS_15 = {"lat": 48.8437, "lon": 2.2958, "tz": "Europe/Paris"}  # ~450 m from the store


def at(hour: int, minute: int = 0, second: int = 0, days: int = 0) -> int:
    dt = DAY.replace(hour=hour, minute=minute, second=second) + timedelta(days=days)
    return int(dt.timestamp() * 1000)


def ev(event_id: str, t: int, type_: str, channel_: str = "web", ids=None, context=None, **props):
    return {"event_id": event_id, "event_time": t, "type": type_, "channel": channel_,
            "ids": ids or {"cookie": "c-1"}, "context": context or {}, "properties": props}


def run(pipeline: Pipeline, events: list[dict], partition: int = 0, batch: int = 1000,
        end: bool | None = None) -> Emitted:
    """Events of one partition through the pipeline. Without declared partitions (`sources`) each
    run is a whole input, as a replayed file: its end releases the events still held."""
    out = Emitted()
    for i in range(0, len(events), batch):
        raws = [(orjson.dumps(e), "touchpoints", partition, n)
                for n, e in enumerate(events[i:i + batch])]
        good, dead = ingest_batch(raws, source_key=SOURCE)
        assert not dead, dead
        out.extend(pipeline.process(good))
    if end if end is not None else not pipeline.watermark.sources:
        out.extend(pipeline.end_of_input())
    return out


def consent(event_id: str, t: int, channel: str, opt_in: bool = True, ids=None, **extra):
    return ev(event_id, t, "consent", "app", ids or {"cookie": "c-1", "user": "u-1"},
              channel=channel, opt_in=opt_in, **extra)


def by_rule(out: Emitted, rule: str) -> tuple[list, list]:
    return ([t for t in out.triggers if t["rule"] == rule],
            [s for s in out.suppressions if s["rule"] == rule])


def pack(rules_yaml: str,
         preferences: str = ("  holdout: 0\n  quiet_hours: null\n"
                             "  default_opt_in: {push: true, email: true, display: true}\n")):
    return load_pack_text(
        "version: 1\nsettings: {lateness: 5m}\n"
        "reference: {stores: stores.csv, inventory: inventory.csv}\n"
        f"preferences:\n{preferences}rules:\n{rules_yaml}",
        base_dir=load_default().stores_file
        and __import__("pathlib").Path(load_default().stores_file).parent)


# --- event + geofence + profile + cooldown ------------------------------------------------------

def test_near_store_fires_once_for_an_identified_opted_in_person():
    p = Pipeline(rules=load_default())
    ids = {"device": "d-1", "user": "u-1"}
    out = run(p, [
        consent("c1", at(17), "push", ids=ids),
        ev("g1", at(18, 40), "geofence_enter", "store", ids, NEAR_PARIS_15),
        ev("v1", at(18, 42), "store_visit", "store", ids,
           {**NEAR_PARIS_15, "store_id": "paris-15"}),
    ])
    sent, held = by_rule(out, "near_store_offer")
    assert len(sent) == 1
    trig = sent[0]
    assert (trig["channel"], trig["event_id"], trig["code"]) == ("push", "g1", "XPGJRL")
    assert trig["payload"]["store_id"] == "paris-15" and trig["payload"]["code"] == "XPGJRL"
    assert trig["matched"] == ["g1"] and "near_store_offer" in trig["reason"]
    assert [s["reason"] for s in held] == ["cooldown"]


def test_geofence_ignores_positions_far_from_every_store():
    p = Pipeline(rules=load_default())
    ids = {"device": "d-1", "user": "u-1"}
    out = run(p, [consent("c1", at(17), "push", ids=ids),
                  ev("g1", at(18), "geofence_enter", "store", ids, {"lat": 48.90, "lon": 2.20})])
    assert by_rule(out, "near_store_offer") == ([], [])


def test_anonymous_profile_does_not_match_an_identified_only_rule():
    p = Pipeline(rules=load_default())
    out = run(p, [ev("g1", at(18), "geofence_enter", "store", {"device": "d-9"}, NEAR_PARIS_15)])
    assert by_rule(out, "near_store_offer") == ([], [])


def test_no_consent_is_an_opt_out_suppression():
    p = Pipeline(rules=load_default())
    ids = {"device": "d-1", "user": "u-1"}
    out = run(p, [ev("g1", at(18), "geofence_enter", "store", ids, NEAR_PARIS_15)])
    sent, held = by_rule(out, "near_store_offer")
    assert sent == [] and [s["reason"] for s in held] == ["opt_out"]


# --- sequence -------------------------------------------------------------------------------------

SEQUENCE = """  - id: click_then_price
    when:
      sequence:
        steps: [{type: click, channel: search}, {type: price_view}]
        within: 20m
    action: {channels: [display]}
"""


def test_sequence_in_order_within_the_window():
    out = run(Pipeline(rules=pack(SEQUENCE)), [
        ev("k1", at(10), "click", "search"), ev("p1", at(10, 15), "price_view", product_id="suv-x"),
        ev("p2", at(10, 16), "price_view", product_id="suv-x"),  # used events are consumed
    ])
    sent, _ = by_rule(out, "click_then_price")
    assert [t["matched"] for t in sent] == [["k1", "p1"]]


def test_sequence_outside_the_window_does_not_fire():
    out = run(Pipeline(rules=pack(SEQUENCE)), [
        ev("k1", at(10), "click", "search"), ev("p1", at(10, 21), "price_view")])
    assert by_rule(out, "click_then_price") == ([], [])


def test_sequence_out_of_order_is_handled_as_if_in_order():
    in_order = run(Pipeline(rules=pack(SEQUENCE)), [
        ev("k1", at(10), "click", "search"), ev("p1", at(10, 2), "price_view")])
    reordered = run(Pipeline(rules=pack(SEQUENCE)), [
        ev("p1", at(10, 2), "price_view"), ev("k1", at(10), "click", "search")])
    assert in_order.triggers and in_order.triggers == reordered.triggers
    assert reordered.late == []


# --- absence --------------------------------------------------------------------------------------

ABSENCE = """  - id: price_left
    when:
      absence:
        after: {type: price_view}
        missing: {type: [lead, purchase]}
        within: 30m
    action: {channels: [email]}
"""


def test_absence_fires_when_the_watermark_passes_the_deadline():
    p = Pipeline(rules=pack(ABSENCE))
    out = run(p, [ev("p1", at(10), "price_view", product_id="suv-x")])
    assert out.triggers == []
    # 10:30 deadline + 5 min lateness: an event at 10:35 is not enough, 10:35:01 is
    assert run(p, [ev("x1", at(10, 35), "page_view", ids={"cookie": "other"})]).triggers == []
    out = run(p, [ev("x2", at(10, 35, 1), "page_view", ids={"cookie": "other"})])
    assert [(t["rule"], t["event_id"], t["fired_at"]) for t in out.triggers] == [
        ("price_left", "p1", at(10, 30))]


def test_absence_is_cancelled_by_the_missing_event_in_either_arrival_order():
    after = run(Pipeline(rules=pack(ABSENCE)), [
        ev("p1", at(10), "price_view"), ev("l1", at(10, 20), "lead"),
        ev("x", at(12), "page_view", ids={"cookie": "other"})])
    before = run(Pipeline(rules=pack(ABSENCE)), [
        ev("l1", at(10, 20), "lead"), ev("p1", at(10), "price_view"),
        ev("x", at(12), "page_view", ids={"cookie": "other"})])
    assert by_rule(after, "price_left") == ([], []) and by_rule(before, "price_left") == ([], [])


def test_a_missing_event_after_the_window_does_not_cancel():
    out = run(Pipeline(rules=pack(ABSENCE)), [
        ev("p1", at(10), "price_view"), ev("l1", at(10, 31), "lead"),
        ev("x", at(12), "page_view", ids={"cookie": "other"})])
    assert len(by_rule(out, "price_left")[0]) == 1


def test_a_late_missing_event_goes_to_the_late_output():
    p = Pipeline(rules=pack(ABSENCE))
    out = run(p, [ev("p1", at(10), "price_view"), ev("x", at(12), "page_view", ids={"cookie": "o"}),
                  ev("l1", at(10, 20), "lead")])  # 1 h 35 behind the watermark (11:55)
    assert len(out.triggers) == 1
    assert [(x["event_id"], x["watermark"]) for x in out.late] == [("l1", at(11, 55))]
    assert "behind the watermark" in out.late[0]["reason"]
    assert "l1" in {tp["event_id"] for tp in out.stitched}  # identity and attribution still see it


def test_restart_in_the_middle_of_an_absence_window():
    stores: dict = {}
    first = Pipeline(stores, rules=pack(ABSENCE))
    assert run(first, [ev("p1", at(10), "price_view")]).triggers == []
    assert any(k != "~watermark" for k in stores["timers"])
    second = Pipeline(stores, rules=pack(ABSENCE))  # a new process over the recovered state
    out = run(second, [ev("x", at(11), "page_view", ids={"cookie": "other"})])
    assert [t["event_id"] for t in out.triggers] == ["p1"]
    assert [k for k in stores["timers"] if k != "~watermark"] == []


def test_absence_counts_from_the_last_anchor():
    out = run(Pipeline(rules=pack(ABSENCE)), [
        ev("p1", at(10), "price_view"), ev("p2", at(10, 20), "price_view"),
        ev("x", at(12), "page_view", ids={"cookie": "o"})])
    assert [(t["event_id"], t["fired_at"]) for t in out.triggers] == [("p2", at(10, 50))]


# --- count, stock join, interest -----------------------------------------------------------------

COUNT = """  - id: three_views
    when:
      count: {match: {type: product_view}, at_least: 3, within: 1d, same: [properties.product_id]}
    action: {channels: [email]}
"""


def test_count_in_a_window_with_the_same_product():
    p = Pipeline(rules=pack(COUNT))
    out = run(p, [ev("v1", at(9), "product_view", product_id="a"),
                  ev("v2", at(10), "product_view", product_id="b"),
                  ev("v3", at(11), "product_view", product_id="a"),
                  ev("v4", at(12), "product_view", product_id="a")])
    assert [t["matched"] for t in out.triggers] == [["v1", "v3", "v4"]]
    out = run(p, [ev("v5", at(9, days=2), "product_view", product_id="b"),
                  ev("v6", at(10, days=2), "product_view", product_id="b")])
    assert out.triggers == []  # v2 is more than a day before


def test_out_of_stock_online_in_stock_nearby():
    p = Pipeline(rules=load_default())
    ids = {"cookie": "c-1", "email": "someone@example.com"}
    out = run(p, [consent("c1", at(9), "email", ids=ids),
                  ev("v1", at(10), "product_view", "web", ids, NEAR_PARIS_15, product_id="suv-x",
                     in_stock=False)])
    sent, _ = by_rule(out, "out_of_stock_online_in_store")
    assert len(sent) == 1 and sent[0]["payload"] == {"product_id": "suv-x", "store_id": "paris-15"}
    assert sent[0]["channel"] == "email"


def test_stock_join_uses_the_last_known_position_and_needs_stock():
    p = Pipeline(rules=load_default())
    ids = {"cookie": "c-1", "email": "someone@example.com"}
    out = run(p, [consent("c1", at(9), "email", ids=ids),
                  ev("a1", at(9, 30), "app_open", "app", ids, NEAR_PARIS_15),
                  ev("v1", at(10), "product_view", "web", ids, {}, product_id="suv-x",
                     in_stock=False),
                  ev("v2", at(10, 5), "product_view", "web", ids, {}, product_id="no-such-car",
                     in_stock=False)])
    sent, _ = by_rule(out, "out_of_stock_online_in_store")
    assert [t["event_id"] for t in sent] == ["v1"]


def test_known_prospect_needs_recent_interest():
    ids = {"device": "d-1", "email": "p@example.com"}
    visit = ev("s1", at(15), "store_visit", "store", ids, {"store_id": "paris-15", **NEAR_PARIS_15})
    cold = run(Pipeline(rules=load_default()), [visit])
    warm = run(Pipeline(rules=load_default()), [
        ev("v1", at(9), "product_view", "web", ids, product_id="suv-x"),
        ev("v2", at(9, 5), "price_view", "web", ids, product_id="suv-x"), dict(visit)])
    assert by_rule(cold, "known_prospect_in_store")[0] == []
    sent = by_rule(warm, "known_prospect_in_store")[0]
    assert [(t["channel"], t["payload"]["store_id"]) for t in sent] == [("store", "paris-15")]


# --- event time -----------------------------------------------------------------------------------

def test_per_partition_watermark_waits_for_the_slowest_partition():
    p = Pipeline(rules=pack(ABSENCE), sources=2)
    run(p, [ev("p1", at(10), "price_view")], partition=0)
    run(p, [ev("b", at(9), "page_view", ids={"cookie": "b"})], partition=1)
    # partition 0 runs ahead; partition 1 is still at 9:00: no absence can fire yet
    assert run(p, [ev("a", at(10, 50), "page_view", ids={"cookie": "a"})],
               partition=0).triggers == []
    out = run(p, [ev("c", at(10, 40), "page_view", ids={"cookie": "b"})], partition=1)
    assert [t["event_id"] for t in out.triggers] == ["p1"]


def test_an_idle_partition_stops_holding_the_watermark_back():
    p = Pipeline(rules=pack(ABSENCE), sources=2)
    run(p, [ev("p1", at(10), "price_view")], partition=0)
    out = run(p, [ev("a", at(11), "page_view", ids={"cookie": "a"})], partition=0)
    assert out.triggers == []  # partition 1 has sent nothing yet: the watermark waits for it
    out = p.idle("1")  # the worker found partition 1 fully consumed
    assert [t["event_id"] for t in out.triggers] == ["p1"]
    # partition 1 sends again: it holds the watermark again, and its event is not late
    out = run(p, [ev("b", at(10, 57), "page_view", ids={"cookie": "b"})], partition=1)
    assert out.late == [] and p.watermark.value == at(10, 55)


def test_a_partition_running_ahead_in_chunks_makes_nothing_late():
    p = Pipeline(rules=pack(ABSENCE), sources=2)
    ahead = [ev(f"a{i}", at(10 + i), "page_view", ids={"cookie": "a"}) for i in range(8)]
    behind = [ev(f"b{i}", at(10, 10 * i), "page_view", ids={"cookie": "b"}) for i in range(6)]
    assert run(p, ahead, partition=0).late == [] and run(p, behind, partition=1).late == []


def test_batching_does_not_change_the_outcome():
    events = [ev("p1", at(10), "price_view"), ev("l1", at(10, 5), "product_view", product_id="a"),
              ev("p2", at(11), "price_view", ids={"cookie": "c-2"}),
              ev("x", at(11, 12), "page_view", ids={"cookie": "o"}),
              ev("l2", at(11, 10), "lead", ids={"cookie": "c-2"}),  # out of order, not late
              ev("y", at(13), "page_view", ids={"cookie": "o"})]
    whole = run(Pipeline(rules=pack(ABSENCE)), [dict(e) for e in events])
    single = run(Pipeline(rules=pack(ABSENCE)), [dict(e) for e in events], batch=1)
    assert whole.triggers == single.triggers and whole.suppressions == single.suppressions
    assert [t["event_id"] for t in whole.triggers] == ["p1"] and whole.late == []


def test_reprocessing_an_event_gives_the_same_trigger_id_and_a_duplicate():
    p = Pipeline(rules=pack(SEQUENCE.replace("within: 20m", "within: 20m\n    cooldown: 0")))
    events = [ev("k1", at(10), "click", "search"), ev("p1", at(10, 2), "price_view")]
    first = run(p, events)
    again = run(p, [dict(e) for e in events])
    assert len(first.triggers) == 1
    assert again.triggers == []
    assert [s["reason"] for s in again.suppressions] == ["duplicate"]
    assert again.suppressions[0]["trigger_id"] == first.triggers[0]["trigger_id"]


# --- merges and erasure ---------------------------------------------------------------------------

def test_state_follows_a_merge():
    p = Pipeline(rules=pack(SEQUENCE))
    out = run(p, [ev("k1", at(10), "click", "search", ids={"cookie": "c-a"}),
                  ev("p1", at(10, 5), "price_view", ids={"device": "d-b"}),
                  ev("i1", at(10, 6), "identify", ids={"cookie": "c-a", "device": "d-b"}),
                  ev("p2", at(10, 7), "price_view", ids={"device": "d-b"})])
    assert [t["matched"] for t in out.triggers] == [["k1", "p2"]]


def test_forget_drops_pending_timers():
    stores: dict = {}
    p = Pipeline(stores, rules=pack(ABSENCE))
    run(p, [ev("p1", at(10), "price_view")])
    p.forget("cookie:c-1")
    out = run(p, [ev("x", at(12), "page_view", ids={"cookie": "o"})])
    assert out.triggers == [] and out.suppressions == []
    assert [k for k in stores["timers"] if k != "~watermark"] == []


def test_merge_into_a_profile_deleted_earlier_in_the_batch():
    """A survivor whose state was dropped earlier in the same batch (a pending tombstone) starts
    afresh instead of failing."""
    p = Pipeline(rules=load_default())
    engine = p.moments.engine
    engine.moments.set("p-old", {"int": [[at(9), "suv-x"]], "loc": [48.8, 2.3, at(9)]})
    engine.moments.delete("p-new")
    engine.on_merge("p-new", ["p-old"])
    assert engine.moments.get("p-new") == {"int": [[at(9), "suv-x"]], "loc": [48.8, 2.3, at(9)]}
    assert engine.moments.get("p-old") is None
