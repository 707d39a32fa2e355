"""Preference gate state: what observe records, bounds and immutability, merge/forget,
state properties."""
from __future__ import annotations

import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.preferences.gate import DAY_MS, MAX_ENGAGEMENTS, MAX_RECORDS
from tests.unit.preferences.cases import T0, H, cand, consent, ev, gate, ms, reason


# -- observe: what is recorded and what is not written -------------------------------------------
def test_observe_writes_only_on_change():
    state, g = gate()
    g.observe(ev("page_view", T0, tz="Europe/Paris"))
    assert state.get("p1") == {"z": [T0, "Europe/Paris"]}
    state.flush()
    for event in (ev("page_view", T0 + 1, tz="Europe/Paris"),  # same tz
                  ev("page_view", T0 - 5, tz="Asia/Tokyo"),    # older tz
                  ev("page_view", T0 + 2, tz="Mars/Olympus"),  # unknown tz
                  ev("page_view", T0 + 3, tz=["not", "a", "tz"]),
                  ev("product_view", T0 + 4),
                  ev("app_open", T0 + 5, pid="", channel="app"),  # anonymous
                  ev("consent", T0 + 6, pid="", opt_in=True)):
        g.observe(event)
    assert state.pending == 0
    g.observe(ev("page_view", T0 + 10, tz="Asia/Tokyo"))
    assert state.get("p1")["z"] == [T0 + 10, "Asia/Tokyo"]
    state.flush()
    consent(g, T0 + 20, "push", True)
    state.flush()
    consent(g, T0 + 20, "push", True)  # replayed consent event: no change
    g.observe(ev("email_open", T0 + 30, channel="email"))
    state.flush()
    g.observe(ev("email_open", T0 + 30, channel="email"))  # replayed engagement
    assert state.pending == 0


def test_engagement_is_bounded_per_channel():
    state, g = gate()
    for i in range(60):
        g.observe(ev("push_open", T0 + i * 1000, channel=""))  # channel falls back to push
    times = state.get("p1")["e"]["push"]
    assert len(times) == MAX_ENGAGEMENTS and times == sorted(times) and times[-1] == T0 + 59_000


def test_sent_records_are_bounded_and_pruned():
    state, g = gate(max_per_day=1000, max_per_day_channel={})
    for i in range(80):
        g.decide(cand(T0 + i * 60_000, f"t{i}"))
    assert len(state.get("p1")["s"]) == MAX_RECORDS
    g.decide(cand(T0 + 10 * DAY_MS, "late", cooldown_ms=3 * DAY_MS))
    g.decide(cand(T0 + 12 * DAY_MS, "later"))
    assert [r[4] for r in state.get("p1")["s"]] == ["late", "later"]  # late kept for its cooldown


def test_values_read_from_the_store_are_never_mutated():
    backing: dict = {}
    state, g = gate(backing, quiet_hours=("21:00", "08:00"))
    consent(g, T0 - 5, "push", True, preferred_channels=["push"])
    g.observe(ev("push_open", T0 - 4, channel="push", tz="Europe/Paris"))
    g.decide(cand(T0, "a"))
    g.decide(cand(T0, "o", pid="p2"))
    state.flush()
    before = copy.deepcopy(backing)
    consent(g, T0 + 1, "push", False, quiet_hours="")
    consent(g, T0 + 1, "all", True, max_per_day=9)
    g.observe(ev("push_open", T0 + 2, channel="push", tz="Asia/Tokyo"))
    g.decide(cand(T0 + 3, "b", rule="x", channels=("sms",)))
    g.decide(cand(ms("2026-11-20T23:00+00:00"), "c", rule="y", channels=("sms",)))
    g.on_merge("p1", ["p2"])
    assert backing == before
    state.discard()
    assert backing == before
    assert json.loads(json.dumps(before)) == before


# -- identity events -----------------------------------------------------------------------------
def test_merge_combines_consent_history_and_deletes_the_absorbed():
    state, g = gate(default_opt_in={})
    consent(g, T0 - 100, "push", True, pid="a")
    consent(g, T0 - 50, "push", False, pid="b")
    consent(g, T0 - 50, "sms", True, pid="b", tz="Asia/Tokyo")
    g.observe(ev("sms_click", T0 - 40, pid="a", channel="sms"))
    assert g.decide(cand(T0, "ta", pid="a")).trigger["channel"] == "push"
    assert g.decide(cand(T0, "tb", pid="b", channels=("sms",))).trigger["channel"] == "sms"
    state.flush()
    g.on_merge("a", ["b", "missing"])
    assert "b" not in state
    merged = state.get("a")
    assert merged["c"] == {"push": [T0 - 50, False], "sms": [T0 - 50, True]}
    assert merged["z"] == [T0 - 50, "Asia/Tokyo"] and merged["e"] == {"sms": [T0 - 40]}
    assert sorted(r[4] for r in merged["s"]) == ["ta", "tb"]
    assert reason(g.decide(cand(T0, "tb", pid="a"))) == "duplicate"
    assert g.decide(cand(T0 + DAY_MS, "tc", pid="a", channels=("push", "sms"))).trigger[
        "channel"] == "sms"


def test_forget_deletes_the_profile():
    state, g = gate()
    g.decide(cand(T0))
    state.flush()
    g.on_forget("p1")
    g.on_forget("nobody")
    assert state.pending == 1 and "p1" not in state
    assert reason(g.decide(cand(T0))) == "sent"


# -- properties ----------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["page_view", "push_open", "consent", "decide"]),
                          st.integers(0, 20 * DAY_MS), st.sampled_from(["push", "sms", "all"])),
                max_size=40))
def test_state_stays_json_and_bounded(ops):
    state, g = gate(quiet_hours=("21:00", "08:00"), rolling=((3 * DAY_MS, 4),))
    for i, (kind, t, ch) in enumerate(ops):
        if kind == "decide":
            d = g.decide(cand(T0 + t, f"t{i}", rule=ch, channels=("push", "sms"), cooldown_ms=H))
            assert (d.trigger is None) != (d.suppression is None)
            assert (d.defer_until is not None) == (reason(d) == "quiet_hours_deferred")
        elif kind == "consent":
            consent(g, T0 + t, ch, t % 2 == 0, tz="America/Martinique")
        else:
            g.observe(ev(kind, T0 + t, channel=ch, tz="Asia/Tokyo"))
    value = state.get("p1")
    if value is not None:
        assert json.loads(json.dumps(value)) == value
        assert len(value.get("s", ())) <= MAX_RECORDS
        assert all(len(v) <= MAX_ENGAGEMENTS for v in value.get("e", {}).values())
