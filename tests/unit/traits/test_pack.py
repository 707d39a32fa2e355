"""The pack's `traits:` and `audiences:` as read, what a rule does with them, and declared traits
at ingest: an audience a rule requires, a trait test, a payload carrying a trait, the mistakes
the reader names at their line, and the refusals that make an identify a dead letter."""
from __future__ import annotations

import orjson
import pytest

from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import RulePackError, load_pack_text
from streams.pipeline import Emitted, Pipeline
from streams.traits import model as T

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
HOUR, DAY = 3_600_000, 86_400_000

PACK = """
version: 1
preferences: {default_opt_in: {store: true}, quiet_hours: null, holdout: 0}
traits:
  lapse_after: 60d
  rfm: {recency: [1d, 2d, 3d, 4d], frequency: [2, 3, 4, 5], monetary: [10, 20, 30, 40]}
audiences:
  - id: big_spenders
    when: {trait: revenue, gte: 500}
  - id: suv_fans
    when: {count: {type: product_view, properties.category: suv}, within: 30d, gte: 2}
rules:
  - id: vip_visit
    when: {event: {type: store_visit}}
    profile: {audience: big_spenders}
    action: {channels: [store], payload: {top: "{trait.top_channel}", persona: "{trait.persona}"}}
  - id: repeat_visit
    when: {event: {type: store_visit}}
    profile: {trait: lifecycle, in: [repeat]}
    action: {channels: [store]}
"""


def run(events: list[dict], pack_text: str = PACK) -> tuple[Pipeline, Emitted]:
    pipeline = Pipeline(rules=load_pack_text(pack_text))
    raws = [(orjson.dumps(e), "file", None, n) for n, e in enumerate(events, start=1)]
    good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET,
                              now_ms=max(e["event_time"] for e in events) + DAY)
    assert not dead, dead
    out = pipeline.process(good)
    out.extend(pipeline.end_of_input())
    return pipeline, out


def ev(event_id: str, t: int, kind: str, channel: str = "web", **properties) -> dict:
    event = {"event_id": event_id, "event_time": t, "type": kind, "channel": channel,
             "ids": {"user": "u1"}}
    if properties:
        event["properties"] = properties
    return event


def test_the_pack_reads_traits_settings_and_audiences():
    pack = load_pack_text(PACK)
    assert pack.traits.lapse_after_ms == 60 * DAY
    assert pack.traits.rfm.recency_ms == (DAY, 2 * DAY, 3 * DAY, 4 * DAY)
    assert pack.traits.rfm.source == "the rule pack"
    assert [a.id for a in pack.audiences] == ["big_spenders", "suv_fans"]
    count = pack.audiences[1].when
    assert isinstance(count, T.CountTest) and count.ops == (("gte", 2),)
    assert [(c.field, c.op, c.value) for c in count.match.conditions] == [
        ("type", "eq", "product_view"), ("properties.category", "eq", "suv")]
    vip = pack.rules[0]
    assert vip.profile.audiences == ("big_spenders",)
    assert pack.rules[1].profile.trait == T.TraitTest("lifecycle", (("in", ("repeat",)),))


def test_a_rule_fires_only_for_its_audience_and_carries_the_traits_it_names():
    events = [
        ev("v1", T0, "store_visit", "store"),  # not yet a big spender
        ev("i1", T0 + HOUR, "identify", traits={"persona": "family"}),
        ev("c1", T0 + 2 * HOUR, "click", "display"),
        ev("p1", T0 + 3 * HOUR, "purchase", "store", revenue=600.0, order_id="o1"),
        ev("v2", T0 + 2 * DAY, "store_visit", "store"),  # now one
    ]
    pipeline, out = run(events)
    fired = [(t["rule"], t["event_id"], t["payload"]) for t in out.triggers]
    # the visit itself counts: two store visits against one display click
    assert fired == [("vip_visit", "v2", {"top": "store", "persona": "family"})]
    pid = pipeline.identity.profile_of("user:u1")
    assert [(r["kind"], r["audience"], r["event_id"]) for r in out.audiences] == [
        ("audience_entered", "big_spenders", "p1")]
    assert pipeline.traits.current(pid)["audiences"] == ["big_spenders"]


def test_a_trait_test_in_a_rule_reads_the_lifecycle_now():
    events = [ev("p1", T0, "purchase", "store", revenue=5.0, order_id="o1"),
              ev("v1", T0 + HOUR, "store_visit", "store"),
              ev("p2", T0 + 2 * HOUR, "purchase", "store", revenue=5.0, order_id="o2"),
              ev("v2", T0 + 3 * HOUR, "store_visit", "store")]
    _pipeline, out = run(events)
    assert [(t["rule"], t["event_id"]) for t in out.triggers] == [("repeat_visit", "v2")]


def test_a_count_audience_enters_and_exits_once_each_as_its_window_passes():
    events = [ev("a", T0, "product_view", category="suv"),
              ev("b", T0 + DAY, "product_view", category="suv"),
              ev("c", T0 + 2 * DAY, "product_view", category="city"),
              ev("late", T0 + 40 * DAY, "page_view")]  # moves the watermark past a's window
    _pipeline, out = run(events)
    assert [(r["kind"], r["audience"], r["cause"], r["at"]) for r in out.audiences] == [
        ("audience_entered", "suv_fans", "event", T0 + DAY),
        ("audience_exited", "suv_fans", "time", T0 + 30 * DAY)]
    assert len({r["record_id"] for r in out.audiences}) == 2


@pytest.mark.parametrize("snippet, message", [
    ("audiences:\n  - id: a\n    when: {trait: revenue, gte: x}\n",
     "audiences[a].when.gte: 'x' is not a number"),
    ("audiences:\n  - id: a\n    when: {trait: first_seen, gte: 3}\n",
     "first_seen is a time: test it with within"),
    ("audiences:\n  - id: a\n    when: {trait: revenue, within: 3d}\n", "within is for times"),
    ("audiences:\n  - id: a\n    when: {count: {type: click}, gte: 2}\n", "missing 'within'"),
    ("audiences:\n  - id: a\n    when: {trait: revenue, gte: 1, all: []}\n",
     "one condition per mapping"),
    ("audiences:\n  - id: a\n    when: {trait: Revenue, gte: 1}\n", "is not a trait"),
    ("traits:\n  rfm: {recency: [3d, 2d, 4d, 5d], frequency: [1, 2, 3, 4],\n"
     "        monetary: [1, 2, 3, 4]}\n", "are not ascending"),
])
def test_mistakes_in_traits_and_audiences_are_named_at_their_line(snippet, message):
    text = "version: 1\n" + snippet + "rules:\n  - {id: r, when: {event: {type: click}}, " \
                                      "action: {channels: [web]}}\n"
    with pytest.raises(RulePackError) as e:
        load_pack_text(text, source="p.yaml")
    assert message in str(e.value), str(e.value)
    assert str(e.value).startswith("p.yaml:"), str(e.value)


def test_a_rule_naming_an_unknown_audience_or_trait_placeholder_is_refused():
    text = PACK.replace("profile: {audience: big_spenders}", "profile: {audience: big_spender}")
    with pytest.raises(RulePackError, match="no audience 'big_spender' in the pack .did you mean "
                                            "'big_spenders'"):
        load_pack_text(text)
    text = PACK.replace("{trait.top_channel}", "{trait.Top}")
    with pytest.raises(RulePackError, match="'Top' is not a trait"):
        load_pack_text(text)


def _ingest(traits) -> tuple[list, list]:
    record = {"event_id": "i", "event_time": T0, "type": "identify", "ids": {"user": "u"},
              "properties": {"traits": traits}}
    return ingest_batch([(orjson.dumps(record), "t", 0, 1)], now_ms=T0 + DAY)


def test_declared_traits_are_kept_as_given_with_personal_data_hashed():
    good, dead = _ingest({"persona": "family", "topics": ["ev", "towing"], "seats": 7,
                          "phone": "06 00 00 00 00", "note": "write to Martin@Example.com",
                          "store": None})
    assert not dead
    kept = good[0]["properties"]["traits"]
    assert kept["persona"] == "family" and kept["topics"] == ["ev", "towing"] and kept["seats"] == 7
    assert len(kept["phone"]) == 64 and "Martin@Example.com" not in kept["note"]
    assert kept["store"] is None  # null clears the trait


@pytest.mark.parametrize("traits, reason", [
    ("family", "is not a mapping of traits"),
    ({"revenue": 5}, "revenue is a computed trait"),
    ({"Persona": "x"}, "a trait name is lowercase letters"),
    ({"persona": {"nested": 1}}, "a trait is a text"),
    ({"topics": list(range(51))}, "a list holds at most 50"),
    ({"phone": "n/a"}, "not a valid phone"),
    ({f"t{i}": 1 for i in range(51)}, "at most 50"),
])
def test_a_bad_declared_trait_makes_the_identify_a_dead_letter_with_its_reason(traits, reason):
    good, dead = _ingest(traits)
    assert not good and reason in dead[0]["reason"], dead
