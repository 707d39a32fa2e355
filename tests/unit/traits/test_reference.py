"""Traits equal an independent computation over the same events.

Random event logs for a few people over years (several channels, attribution touches, purchases
with a revenue and sometimes an order reported twice, identify events declaring a persona and a
favourite store, identifiers that make profiles merge, gaps past the top-channel window, the lapse
and the RFM recency cuts, events a little out of order within the allowed lateness) go through
`Pipeline`. Each live profile's final `profile_traits` row is compared with a computation written
here from the definitions, over the raw events grouped by the profile they end up in (their
stitched profile re-mapped through the merges): first and last seen, distinct purchases and their
revenue, the last purchase, the lifecycle, the top channel, RFM, the declared traits, the audiences
and the row's `as_of` itself (the last event, or the last time-driven change the final watermark
has passed). The audience records alternate entered / exited per profile and audience and end in
the final membership; a merged-away profile ends deleted, out of every audience (cause "merge").

Nothing of `streams.traits` is called to compute what is expected. Hand-made examples: time
passing (the lapse, every RFM cut, the top-channel window), declared traits arriving out of order,
a merge of two profiles that share an order, and an erasure.

An order reported again may carry other identifiers than its first report: two profiles that
saw one order and merge later count it once, as its earliest report (the two tests at the end).
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.ingest.pii import hash_identifier
from streams.moments.rules.loader import load_default, load_pack_text
from streams.pipeline import Emitted, Pipeline

SECOND, MINUTE, HOUR, DAY = 1_000, 60_000, 3_600_000, 86_400_000
LATENESS = 5 * MINUTE  # the packs' settings.lateness
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
ENTERED, EXITED = "audience_entered", "audience_exited"
TOUCH_TYPES = frozenset({"impression", "click", "email_open", "email_click", "push_open",
                         "sms_click", "store_visit"})
IDENTIFIED = frozenset({"email", "phone", "user", "loyalty"})
HASHED = frozenset({"email", "phone"})

DEFAULT = load_default()
CUSTOM = load_pack_text("""
version: 1
settings: {lateness: 5m}
traits:
  lapse_after: 120d
  top_channel_window: 45d
  rfm: {recency: [7d, 30d, 60d, 200d], frequency: [2, 4, 6, 8], monetary: [50, 200, 800, 3000]}
audiences:
  - id: loyal_shoppers
    when: {all: [{count: {type: purchase}, within: 60d, gte: 2}, {trait: persona, eq: a}]}
  - id: fresh_buyers
    when: {trait: last_purchase_at, within: 14d}
  - id: display_or_s1
    when: {any: [{trait: top_channel, eq: display}, {trait: favourite_store, in: [s1]}]}
  - id: quiet
    when: {not: {count: {type: [click, impression]}, within: 7d, gte: 1}}
rules:
  - id: never
    when: {event: {type: never_happens}}
    action: {channels: [web]}
""", source="custom.yaml")


# -- the packs, restated ------------------------------------------------------------------------
def _holds(value, wanted) -> bool:
    """A declared trait (a value or a list of values) holds `wanted`."""
    return value == wanted or (isinstance(value, list) and wanted in value)


@dataclass(frozen=True)
class Spec:
    """A pack's traits settings and audiences, written again by hand."""

    lapse: int
    window: int  # top_channel
    recency: tuple
    frequency: tuple
    monetary: tuple
    counts: tuple  # (name, does the event count, within)
    within: tuple  # (time trait, within): the audiences' `within` tests
    audiences: tuple  # (id, test(traits, counts)); the traits hold "as_of"
    touch_timers: bool = False  # an audience tests top_channel: its window moves as_of


def _suv_page(e: dict) -> bool:
    product = (e.get("properties") or {}).get("product_id")
    return (e["type"] in ("page_view", "product_view", "price_view")
            and isinstance(product, str) and product.startswith("suv"))


DEFAULT_SPEC = Spec(
    lapse=180 * DAY, window=90 * DAY, recency=(30 * DAY, 90 * DAY, 180 * DAY, 365 * DAY),
    frequency=(2, 3, 5, 10), monetary=(100, 500, 1000, 5000),
    counts=(("suv", _suv_page, 30 * DAY),), within=(),
    audiences=(
        ("big_spenders", lambda v, n: v["revenue"] >= 500),
        ("suv_prospects", lambda v, n: n["suv"] >= 2 and v["lifecycle"] == "known"),
        ("repeat_customers", lambda v, n: v["lifecycle"] == "repeat"),
        ("lapsed_customers", lambda v, n: v["lifecycle"] == "lapsed"),
    ))
CUSTOM_SPEC = Spec(
    lapse=120 * DAY, window=45 * DAY, recency=(7 * DAY, 30 * DAY, 60 * DAY, 200 * DAY),
    frequency=(2, 4, 6, 8), monetary=(50, 200, 800, 3000),
    counts=(("purchases", lambda e: e["type"] == "purchase", 60 * DAY),
            ("clicks", lambda e: e["type"] in ("click", "impression"), 7 * DAY)),
    within=(("last_purchase_at", 14 * DAY),),
    audiences=(
        ("loyal_shoppers", lambda v, n: n["purchases"] >= 2 and _holds(v.get("persona"), "a")),
        ("fresh_buyers", lambda v, n: (v["last_purchase_at"] is not None
                                       and v["as_of"] - v["last_purchase_at"] < 14 * DAY)),
        ("display_or_s1", lambda v, n: (v["top_channel"] == "display"
                                        or _holds(v.get("favourite_store"), "s1"))),
        ("quiet", lambda v, n: n["clicks"] < 1),
    ), touch_timers=True)
PACKS = {"default": (DEFAULT, DEFAULT_SPEC), "custom": (CUSTOM, CUSTOM_SPEC)}


# -- the reference computation -----------------------------------------------------------------
def _is_touch(e: dict) -> bool:
    if e["type"] in TOUCH_TYPES:
        return True
    if e["type"] != "page_view":
        return False
    url = (e.get("context") or {}).get("url") or ""
    query = url.partition("?")[2]
    keys = [pair.partition("=")[0].lower() for pair in query.split("&") if pair]
    return any(k.startswith("utm_") or k in ("gclid", "fbclid", "msclkid", "dclid") for k in keys)


def _order(e: dict) -> str:
    order = (e.get("properties") or {}).get("order_id")
    return order if isinstance(order, str) and order else e["event_id"]


def _revenue(e: dict) -> float:
    value = (e.get("properties") or {}).get("revenue")
    return float(value) if isinstance(value, (int, float)) else 0.0


def _key(e: dict) -> tuple:
    return e["event_time"], e["event_id"]


def distinct_purchases(events: list[dict]) -> list[dict]:
    """The first report, by (event time, event id), of each order."""
    first: dict[str, dict] = {}
    for e in sorted((e for e in events if e["type"] == "purchase"), key=_key):
        first.setdefault(_order(e), e)
    return list(first.values())


def expected_as_of(events: list[dict], watermark: int, spec: Spec) -> int:
    """The last event, or the last time something changes with no event (a lapse, an RFM
    recency cut, a counted event leaving its window, a `within` test running out, and a touch
    leaving its window when an audience tests top_channel) that the final watermark has
    passed."""
    purchases = distinct_purchases(events)
    lp = max((e["event_time"] for e in purchases), default=None)
    times = {"first_seen": min(e["event_time"] for e in events),
             "last_seen": max(e["event_time"] for e in events), "last_purchase_at": lp}
    changes = []
    if lp is not None:
        changes += [lp + spec.lapse, *(lp + cut for cut in spec.recency)]
    if spec.touch_timers:
        changes += [e["event_time"] + spec.window for e in events if _is_touch(e)]
    for _name, counts, within in spec.counts:
        changes += [e["event_time"] + within for e in events if counts(e)]
    changes += [times[name] + within for name, within in spec.within if times[name] is not None]
    return max([times["last_seen"], *(t for t in changes if t < watermark)])


def expected(events: list[dict], identifiers: list[str], as_of: int, spec: Spec) -> dict:
    """The row's traits, from the definitions."""
    purchases = distinct_purchases(events)
    n = len(purchases)
    revenue = sum(_revenue(e) for e in purchases)
    lp = max((e["event_time"] for e in purchases), default=None)
    if not n:
        known = any(key.partition(":")[0] in IDENTIFIED for key in identifiers)
        lifecycle = "known" if known else "anonymous"
    elif as_of - lp >= spec.lapse:
        lifecycle = "lapsed"
    else:
        lifecycle = "customer" if n == 1 else "repeat"
    touches = Counter(e["channel"] for e in events
                      if _is_touch(e) and as_of - spec.window < e["event_time"] <= as_of)
    top = min(ch for ch, k in touches.items() if k == max(touches.values())) if touches else ""
    if n:
        age = as_of - lp
        r = 5 - sum(age >= cut for cut in spec.recency)
        f = 1 + sum(n >= cut for cut in spec.frequency)
        m = 1 + sum(revenue >= cut for cut in spec.monetary)
        rfm = f"{r}{f}{m}"
    else:
        r = f = m = 0
        rfm = ""
    newest: dict[str, tuple] = {}
    for e in events:
        if e["type"] != "identify":
            continue
        for name, value in ((e.get("properties") or {}).get("traits") or {}).items():
            if name not in newest or _key(e) > newest[name][0]:
                newest[name] = (_key(e), value)
    declared = {name: value for name, (_k, value) in newest.items() if value is not None}
    traits = {**declared, "revenue": revenue, "lifecycle": lifecycle, "top_channel": top,
              "last_purchase_at": lp, "as_of": as_of}
    counts = {name: sum(1 for e in events
                        if counts(e) and as_of - within < e["event_time"] <= as_of)
              for name, counts, within in spec.counts}
    return {
        "first_seen": min(e["event_time"] for e in events),
        "last_seen": max(e["event_time"] for e in events),
        "purchases": n, "revenue": pytest.approx(revenue), "last_purchase_at": lp,
        "lifecycle": lifecycle, "top_channel": top,
        "rfm": rfm, "rfm_r": r, "rfm_f": f, "rfm_m": m,
        "declared": {name: orjson.dumps(value).decode()
                     for name, value in sorted(declared.items())},
        "audiences": sorted(a for a, test in spec.audiences if test(traits, counts)),
    }


COMPARED = ("first_seen", "last_seen", "purchases", "revenue", "last_purchase_at", "lifecycle",
            "top_channel", "rfm", "rfm_r", "rfm_f", "rfm_m", "declared", "audiences")


# -- running the pipeline -----------------------------------------------------------------------
def key_of(kind: str, value: str) -> str:
    """An identifier as identity holds it ("type:value", email and phone hashed as ingest does)."""
    return f"{kind}:{hash_identifier(kind, value) if kind in HASHED else value}"


def run(events: list[dict], pack, cuts=()) -> tuple[Pipeline, Emitted]:
    """The events in file order, in batches ending at `cuts`, then the end of input."""
    pipeline = Pipeline(rules=pack)
    raws = [(orjson.dumps(e), "file", None, n) for n, e in enumerate(events, start=1)]
    now = max(e["event_time"] for e in events) + DAY
    good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET, now_ms=now)
    assert not dead, dead
    out = Emitted()
    bounds = [0, *sorted(cuts), len(good)]
    for a, b in zip(bounds, bounds[1:]):
        out.extend(pipeline.process(good[a:b]))
    out.extend(pipeline.end_of_input())
    return pipeline, out


def current_rows(out: Emitted) -> dict[tuple[str, str], dict]:
    """The newest row per (profile_id, created_by); versions grow in the order rows are sent."""
    rows: dict[tuple[str, str], dict] = {}
    for row in out.traits:
        key = (row["profile_id"], row["created_by"])
        if key in rows:
            assert row["version"] > rows[key]["version"], (key, rows[key], row)
        rows[key] = row
    return rows


def groups_of(events: list[dict], out: Emitted) -> dict[str, list[dict]]:
    """The events with identifiers by the profile they end up in: the stitched profile, then
    the survivor of each merge (a rename too) that absorbed it."""
    survivor: dict[str, str] = {}
    for ev in out.identity:
        if ev["kind"] == "merge":
            for absorbed in ev["absorbed"]:
                survivor[absorbed] = ev["survivor"]

    def final(pid: str) -> str:
        while pid in survivor:
            pid = survivor[pid]
        return pid

    stitched = {tp["event_id"]: tp["profile_id"] for tp in out.stitched}
    assert len(out.stitched) == len(events) and set(stitched) == {e["event_id"] for e in events}
    groups: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        pid = stitched[e["event_id"]]
        assert bool(pid) == bool(e.get("ids")), e
        if pid:
            groups[final(pid)].append(e)
    return dict(groups)


def check(events: list[dict], pipeline: Pipeline, out: Emitted, spec: Spec) -> dict:
    """Every live profile's final row against the reference; the audience records; what a merge
    leaves. Returns the live rows by profile."""
    groups = groups_of(events, out)
    watermark = max(e["event_time"] for e in events) - LATENESS
    assert pipeline.watermark.value == watermark
    identity = pipeline.identity
    if not any(ev["kind"] == "refused" for ev in out.identity):
        for pid, evs in groups.items():  # no refused link: the profiles are the linked ids
            keys = {key_of(k, v) for e in evs for k, v in e["ids"].items()}
            assert {k: identity.profile_of(k) for k in keys} == dict.fromkeys(keys, pid)
            assert set(identity.identifiers_of(pid)) == keys

    rows = current_rows(out)
    live = {pid: row for (pid, _b), row in rows.items() if not row["is_deleted"]}
    assert len(live) == sum(1 for row in rows.values() if not row["is_deleted"])  # one record
    assert set(live) == set(groups)
    for (pid, _b), row in rows.items():
        assert row["is_deleted"] or pid in groups, row  # a profile merged away is deleted
    assert set(pipeline.states["traits"].backing) == set(groups)

    for pid, row in live.items():
        evs = groups[pid]
        assert row["as_of"] == expected_as_of(evs, watermark, spec), (pid, evs)
        want = expected(evs, identity.identifiers_of(pid), row["as_of"], spec)
        got = {name: row[name] for name in COMPARED}
        got["audiences"] = sorted(got["audiences"])
        assert got == want, (pid, evs)

    records: dict[tuple[str, str], list[dict]] = defaultdict(list)
    seq: dict[str, int] = {}
    for rec in out.audiences:
        records[rec["profile_id"], rec["audience"]].append(rec)
        assert rec["seq"] > seq.get(rec["profile_id"], 0), rec
        seq[rec["profile_id"]] = rec["seq"]
    assert len({rec["record_id"] for rec in out.audiences}) == len(out.audiences)
    for (pid, audience), recs in records.items():
        kinds = [rec["kind"] for rec in recs]
        assert kinds == [(ENTERED, EXITED)[i % 2] for i in range(len(kinds))], recs
        if pid in live:
            assert (kinds[-1] == ENTERED) == (audience in live[pid]["audiences"]), recs
        else:  # merged away: out of every audience (the cause: test_a_merge_counts_...)
            assert kinds[-1] == EXITED, recs
    for pid, row in live.items():
        for audience in row["audiences"]:
            assert records[pid, audience][-1]["kind"] == ENTERED
    return live


# -- random logs ----------------------------------------------------------------------------------
CHANNELS = ("display", "email", "push", "search", "social", "store")
TYPES = ("impression", "click", "email_open", "email_click", "push_open", "sms_click",
         "store_visit", "page_view", "page_view", "product_view", "app_open", "purchase",
         "purchase", "purchase", "identify", "identify")
SHAPES = (("cookie",), ("cookie",), ("cookie", "email"), ("email",), ("phone",),
          ("cookie", "phone"), ("user", "email"), ("device",), ("device", "user"), ())
POOL = {"cookie": 4, "email": 3, "phone": 2, "user": 2, "device": 2}
GAPS = (SECOND, 45 * SECOND, HOUR, HOUR, DAY, DAY, 3 * DAY, 10 * DAY, 29 * DAY, 31 * DAY,
        91 * DAY, 181 * DAY, 366 * DAY)
URLS = ("https://shop.example/suv?utm_source=news&utm_medium=email", "https://shop.example/?gclid=k1",
        "https://shop.example/city", "https://shop.example/?ref=a")
REVENUES = (None, 0, 49.5, 100, 250, 499.99, 500, 1200, 6000)


def _value(kind: str, n: int) -> str:
    """Valid for ingest (an email or a phone it cannot normalise would be dropped)."""
    if kind == "email":
        return f"e{n}@example.com"
    if kind == "phone":
        return f"+3361000000{n}"
    return f"{kind[:1]}{n}"


def _event(draw, n: int, t: int, kind: str, ids: dict, orders: list,
           orders_anywhere: bool) -> dict:
    # a little out of order: within the allowed lateness (5 minutes)
    jitter = draw(st.sampled_from((0, 0, 0, 30 * SECOND, 200 * SECOND)))
    event = {"event_id": f"e{n:03d}", "event_time": t - jitter, "type": kind,
             "channel": draw(st.sampled_from(CHANNELS)), "ids": ids}
    props: dict = {}
    if kind == "purchase":
        how = draw(st.sampled_from(("none", "empty", "new", "new", "again")))
        revenue = draw(st.sampled_from(REVENUES))
        if how == "again" and orders:  # the same order reported again (the web, the store)
            order, first_ids, first_revenue = draw(st.sampled_from(orders))
            props["order_id"] = order
            if not orders_anywhere:
                event["ids"] = dict(first_ids)
            if draw(st.booleans()):
                revenue = first_revenue
        elif how in ("new", "again"):
            props["order_id"] = f"o{n}"
            orders.append((f"o{n}", ids, revenue))
        elif how == "empty":
            props["order_id"] = ""
        if revenue is not None:
            props["revenue"] = revenue
    elif kind == "identify":
        props["traits"] = draw(st.dictionaries(
            st.sampled_from(("persona", "favourite_store")),
            st.sampled_from(("a", "b", "s1", "s2", None, ["s1", "s3"])), min_size=1))
    elif kind in ("page_view", "product_view"):
        event["context"] = {"url": draw(st.sampled_from(URLS))}
        product = draw(st.sampled_from((None, "suv-1", "suv-2", "suv-2", "city-1")))
        if product is not None:
            props["product_id"] = product
    if props:
        event["properties"] = props
    return event


def event_log(draw, *, orders_anywhere: bool) -> list[dict]:
    """A log in file order: events of a few people, some in short bursts of one kind. An order
    reported again carries the identifiers of its first report (the same profile then) unless
    `orders_anywhere`."""
    t = T0
    orders: list[tuple[str, dict, float | None]] = []
    events: list[dict] = []
    for _ in range(draw(st.integers(2, 40))):
        t += draw(st.sampled_from(GAPS))
        kind = draw(st.sampled_from(TYPES))
        if events and draw(st.booleans()):  # the same person goes on
            ids = dict(events[-1]["ids"])
        else:
            shape = draw(st.sampled_from(SHAPES))
            ids = {k: _value(k, draw(st.integers(0, POOL[k] - 1))) for k in shape}
        events.append(_event(draw, len(events), t, kind, ids, orders, orders_anywhere))
        for _ in range(draw(st.sampled_from((0, 0, 0, 1, 2)))):  # more of the same, soon
            t += draw(st.sampled_from((MINUTE, HOUR, DAY, 5 * DAY)))
            events.append(_event(draw, len(events), t, kind, dict(ids), orders,
                                 orders_anywhere))
    return events


def _cuts(draw, events: list[dict]) -> list[int]:
    return draw(st.lists(st.integers(0, len(events)), max_size=3))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pack=st.sampled_from(sorted(PACKS)), data=st.data())
def test_traits_equal_the_reference_computation(pack, data):
    events = event_log(data.draw, orders_anywhere=True)
    rules, spec = PACKS[pack]
    pipeline, out = run(events, rules, _cuts(data.draw, events))
    check(events, pipeline, out, spec)


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
