"""Preference gate checks: record shape, duplicate, cooldown, consent/opt-out, frequency caps,
holdout."""
from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.preferences.gate import DAY_MS
from tests.unit.preferences.cases import T0, H, cand, consent, ev, gate, ms, reason


# -- sending and record shapes -------------------------------------------------------------------
def test_sent_trigger_has_the_documented_shape():
    _, g = gate()
    c = cand(T0, channels=("push", "sms"), payload={"offer": "today_only", "n": 3}, code="XPGJRL")
    d = g.decide(c)
    assert d.suppression is None and d.defer_until is None
    assert d.trigger == {
        "trigger_id": "t1", "profile_id": "p1", "moment": "r", "rule": "r", "channel": "push",
        "event_id": "e-t1", "fired_at": T0, "code": "XPGJRL", "story": "", "message": "",
        "matched": ["e-t1"], "reason": "rule r matched e-t1",
        "payload": {"offer": "today_only", "n": "3", "code": "XPGJRL"},
        "experiment": "", "arm": ""}  # the rule has no experiment


def test_duplicate_trigger_id_is_suppressed_with_a_deterministic_id():
    _, g = gate()
    assert reason(g.decide(cand(T0))) == "sent"
    d = g.decide(cand(T0 + 1000))
    s = d.suppression
    assert d.trigger is None and s["reason"] == "duplicate" and s["channel"] == "push"
    assert s["suppression_id"] == hashlib.sha256(b"t1:duplicate").hexdigest()[:32]
    assert set(s) == {"suppression_id", "trigger_id", "profile_id", "moment", "rule", "channel",
                      "event_id", "reason", "detail", "at", "experiment", "arm"}
    assert s["at"] == T0 + 1000 and "already sent" in s["detail"]


def test_cooldown_applies_in_both_directions_and_per_rule():
    _, g = gate(max_per_day=10)
    assert reason(g.decide(cand(T0, "a", cooldown_ms=2 * H))) == "sent"
    d = g.decide(cand(T0 + H, "b", cooldown_ms=2 * H))
    assert reason(d) == "cooldown" and "trigger a" in d.suppression["detail"]
    assert reason(g.decide(cand(T0 - H, "c", cooldown_ms=2 * H))) == "cooldown"  # out of order
    assert reason(g.decide(cand(T0 + H, "d", rule="other", cooldown_ms=2 * H))) == "sent"
    assert reason(g.decide(cand(T0 + 2 * H, "e", cooldown_ms=2 * H))) == "sent"


# -- consent -------------------------------------------------------------------------------------
def test_out_of_order_consent_keeps_the_latest_by_event_time():
    _, g = gate(default_opt_in={})
    consent(g, T0 - 10, "push", True)
    consent(g, T0 - 20, "push", False)  # older opt-out arrives late: ignored
    assert reason(g.decide(cand(T0, "a"))) == "sent"
    _, g = gate(default_opt_in={})
    consent(g, T0 - 10, "push", False)
    consent(g, T0 - 20, "push", True)  # older opt-in arrives late: ignored
    d = g.decide(cand(T0, "a"))
    assert reason(d) == "opt_out" and d.suppression["detail"] == "push: opted out"
    assert d.suppression["channel"] == ""


def test_all_consent_and_channel_consent():
    _, g = gate(default_opt_in={})
    assert reason(g.decide(cand(T0, "a", channels=("email",)))) == "opt_out"  # not listed: False
    consent(g, T0 - 100, "all", True)
    assert reason(g.decide(cand(T0, "b", channels=("email",)))) == "sent"
    consent(g, T0 - 50, "push", False)  # a later per-channel opt-out beats the "all" opt-in
    d = g.decide(cand(T0 + DAY_MS, "c", channels=("push", "sms")))
    assert d.trigger["channel"] == "sms"
    consent(g, T0 - 10, "all", False)  # a later "all" opt-out beats the earlier channel consent
    d = g.decide(cand(T0 + 2 * DAY_MS, "d", channels=("push", "sms")))
    assert reason(d) == "opt_out" and "opted out (all)" in d.suppression["detail"]


def test_default_opt_in_from_config():
    _, g = gate(default_opt_in={"display": True, "push": False})
    d = g.decide(cand(T0, channels=("push", "display", "web")))
    assert d.trigger["channel"] == "display"
    assert reason(g.decide(cand(T0, "b", channels=("push", "web")))) == "opt_out"


# -- frequency caps ------------------------------------------------------------------------------
def test_daily_cap_follows_the_local_day_of_martinique():
    _, g = gate(max_per_day_channel={"push": 1}, default_tz="America/Martinique")
    a, b = ms("2026-11-20T02:00+00:00"), ms("2026-11-20T12:00+00:00")  # 11-19 22:00, 11-20 08:00
    assert reason(g.decide(cand(a, "a"))) == "sent"
    assert reason(g.decide(cand(b, "b"))) == "sent"
    _, g = gate(max_per_day_channel={"push": 1})  # the same two in UTC share one day
    assert reason(g.decide(cand(a, "a"))) == "sent"
    assert reason(g.decide(cand(b, "b"))) == "frequency_cap"


def test_daily_cap_follows_the_local_day_of_tokyo_from_the_recorded_tz():
    _, g = gate(max_per_day_channel={"push": 1})
    g.observe(ev("page_view", T0 - DAY_MS, tz="Asia/Tokyo"))
    a, b = ms("2026-11-20T16:00+00:00"), ms("2026-11-21T10:00+00:00")  # both 2026-11-21 in JST
    assert reason(g.decide(cand(a, "a"))) == "sent"
    d = g.decide(cand(b, "b"))
    assert reason(d) == "frequency_cap" and d.suppression["channel"] == "push"
    assert d.suppression["detail"] == "push: 1 of 1 today (Asia/Tokyo 2026-11-21)"


def test_tz_hint_used_when_no_tz_is_recorded():
    _, g = gate(max_per_day_channel={"push": 1})
    a, b = ms("2026-11-20T16:00+00:00"), ms("2026-11-21T10:00+00:00")
    assert reason(g.decide(cand(a, "a", tz_hint="Asia/Tokyo"))) == "sent"
    assert reason(g.decide(cand(b, "b", tz_hint="Asia/Tokyo"))) == "frequency_cap"


def test_overall_and_person_daily_caps_and_channel_fallback():
    _, g = gate(max_per_day=2, max_per_day_channel={"push": 1})
    sent = [g.decide(cand(T0 + i * 60_000, f"t{i}", channels=("push", "sms", "email")))
            for i in range(3)]
    assert [d.trigger and d.trigger["channel"] for d in sent[:2]] == ["push", "sms"]
    assert reason(sent[2]) == "frequency_cap"
    assert sent[2].suppression["detail"] == "all channels: 2 of 2 today (UTC 2026-11-20)"
    _, g = gate(max_per_day=5)
    consent(g, T0 - 1, "push", True, max_per_day=1)
    assert reason(g.decide(cand(T0, "a"))) == "sent"
    assert reason(g.decide(cand(T0 + 1, "b", channels=("sms",)))) == "frequency_cap"


def test_rolling_window_cap():
    _, g = gate(max_per_day=10, rolling=((7 * DAY_MS, 2),))
    assert reason(g.decide(cand(T0, "a"))) == "sent"
    assert reason(g.decide(cand(T0 + 3 * DAY_MS, "b"))) == "sent"
    d = g.decide(cand(T0 + 6 * DAY_MS, "c"))
    assert reason(d) == "frequency_cap" and d.suppression["detail"] == "7d rolling: 2 of 2"
    assert reason(g.decide(cand(T0 + 7 * DAY_MS, "d"))) == "sent"  # a has left (at - 7d, at]

# -- holdout -------------------------------------------------------------------------------------
def test_holdout_is_deterministic_and_close_to_the_configured_share():
    _, g1 = gate(holdout=0.05)
    _, g2 = gate(holdout=0.05)
    out1 = [reason(g1.decide(cand(T0, pid=f"p{i}"))) for i in range(10_000)]
    out2 = [reason(g2.decide(cand(T0, pid=f"p{i}"))) for i in range(10_000)]
    assert out1 == out2 and set(out1) == {"sent", "holdout"}
    assert 0.04 < out1.count("holdout") / 10_000 < 0.06


def test_rule_holdout_is_recorded_but_not_counted_for_caps():
    _, g = gate(max_per_day_channel={"push": 1})
    # a profile in the rule's holdout, asked of a fresh gate
    pid = next(f"p{i}" for i in range(1000)
               if reason(gate()[1].decide(cand(T0, "a", pid=f"p{i}",
                                               holdout_pct=0.5))) == "holdout")
    d = g.decide(cand(T0, "a", pid=pid, holdout_pct=0.5, cooldown_ms=H))
    assert reason(d) == "holdout" and d.suppression["channel"] == "push"
    assert reason(g.decide(cand(T0, "a", pid=pid, holdout_pct=0.5))) == "duplicate"
    assert reason(g.decide(cand(T0 + 1, "b", pid=pid, holdout_pct=0.5,
                                cooldown_ms=H))) == "cooldown"
    assert reason(g.decide(cand(T0 + 2, "c", rule="other", pid=pid))) == "sent"  # cap not used

# -- properties ----------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.sampled_from(["push", "all"]), st.booleans()),
                min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_consent_outcome_does_not_depend_on_arrival_order(events, rnd):
    def outcome(order):
        _, g = gate(default_opt_in={})
        for t, ch, ok in order:
            consent(g, T0 - 100 + t, ch, ok)
        return reason(g.decide(cand(T0)))

    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert outcome(events) == outcome(shuffled) == outcome(sorted(events))
