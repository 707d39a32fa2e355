"""The traits as their definitions say, computed from raw events without `streams.traits`, and the
harness that runs events through `Pipeline` and checks every live row against them
(`test_reference.py`: random logs; `test_examples.py`: hand-made ones)."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

import orjson
import pytest

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
