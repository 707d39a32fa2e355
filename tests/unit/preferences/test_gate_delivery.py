"""Preference gate delivery: quiet-hours deferral and release, story sequences, channel choice."""
from __future__ import annotations

from streams.moments.rules.model import Message
from streams.preferences.gate import DAY_MS, Weights
from tests.unit.preferences.cases import T0, H, cand, consent, ev, gate, ms, reason


# -- quiet hours ---------------------------------------------------------------------------------
def test_quiet_hours_defer_to_the_local_end_then_release_sends_the_same_trigger():
    state, g = gate(quiet_hours=("21:00", "08:00"), default_tz="Europe/Paris")
    at = ms("2026-11-20T22:30+01:00")
    d = g.decide(cand(at, "q1", cooldown_ms=DAY_MS))
    assert d.trigger is None and d.suppression["reason"] == "quiet_hours_deferred"
    assert d.defer_until == ms("2026-11-21T08:00+01:00")
    assert d.suppression["detail"] == (
        "quiet hours 21:00-08:00 Europe/Paris, deferred to 2026-11-21T08:00+01:00")
    assert reason(g.decide(cand(at + 60_000, "q1", cooldown_ms=DAY_MS))) == "duplicate"
    assert reason(g.decide(cand(at + H, "q2", cooldown_ms=DAY_MS))) == "cooldown"
    out = g.decide(cand(d.defer_until, "q1", cooldown_ms=DAY_MS), released=True)
    assert out.trigger["trigger_id"] == "q1" and out.trigger["fired_at"] == d.defer_until
    assert [r[1] for r in state.get("p1")["s"]] == ["s"]  # deferral replaced by the sent record
    again = g.decide(cand(d.defer_until, "q1", cooldown_ms=DAY_MS), released=True)
    assert reason(again) == "duplicate"


def test_quiet_hours_early_morning_defers_the_same_day_and_daytime_sends():
    _, g = gate(quiet_hours=("21:00", "08:00"), default_tz="Asia/Tokyo")
    d = g.decide(cand(ms("2026-11-21T03:00+09:00"), "a"))
    assert d.defer_until == ms("2026-11-21T08:00+09:00")
    assert reason(g.decide(cand(ms("2026-11-21T08:00+09:00"), "b"))) == "sent"


def test_released_candidate_rechecks_consent_and_caps():
    _, g = gate(quiet_hours=("21:00", "08:00"), max_per_day_channel={"push": 1})
    at = ms("2026-11-20T23:00+00:00")
    d = g.decide(cand(at, "a"))
    consent(g, at + H, "push", False)
    out = g.decide(cand(d.defer_until, "a"), released=True)
    assert reason(out) == "opt_out"
    consent(g, at + 2 * H, "push", True)
    # released=True skips the quiet hours: this one fills the push cap of 2026-11-21
    assert reason(g.decide(cand(d.defer_until - 1, "x", rule="o"), released=True)) == "sent"
    assert reason(g.decide(cand(d.defer_until, "a"), released=True)) == "frequency_cap"


def test_quiet_hours_across_the_autumn_dst_change_in_paris():
    _, g = gate(quiet_hours=("21:00", "08:00"), default_tz="Europe/Paris")
    d = g.decide(cand(ms("2026-10-24T22:00+02:00"), "a"))  # CEST evening, ends 08:00 CET
    assert d.defer_until == ms("2026-10-25T08:00+01:00") == ms("2026-10-25T07:00+00:00")
    assert d.suppression["detail"].endswith("deferred to 2026-10-25T08:00+01:00")
    d = g.decide(cand(ms("2026-10-25T07:30+01:00"), "b", rule="o"))  # 08:30 if read as CEST
    assert d.defer_until == ms("2026-10-25T07:00+00:00")


def test_quiet_hours_ending_inside_the_spring_gap_use_the_first_instant_after():
    _, g = gate(quiet_hours=("21:00", "02:30"), default_tz="Europe/Paris")
    d = g.decide(cand(ms("2026-03-28T22:00+01:00"), "a"))  # 2026-03-29 02:30 does not exist
    assert d.defer_until == ms("2026-03-29T03:00+02:00") == ms("2026-03-29T01:00+00:00")


def test_person_quiet_hours_override_and_disable():
    _, g = gate(quiet_hours=("21:00", "08:00"))
    consent(g, T0 - 1, "push", True, quiet_hours="12:00-13:00")
    assert g.decide(cand(T0, "a")).defer_until == T0 + H
    assert reason(g.decide(cand(ms("2026-11-20T22:00+00:00"), "b", rule="o"))) == "sent"
    consent(g, T0, "push", True, quiet_hours="")
    assert reason(g.decide(cand(T0 + 1, "c", rule="x"))) == "sent"

# -- stories -------------------------------------------------------------------------------------
def test_story_messages_in_order_then_sequence_exhausted():
    _, g = gate(default_opt_in={"display": True, "web": True, "video": True}, max_per_day=10)
    msgs = (Message("banner-1", ("display",), {"slot": "top"}), Message("interstitial-2", ("web",)),
            Message("video-3", ("video",), {"product_id": "suv-y"}))
    got = []
    for i in range(4):
        d = g.decide(cand(T0 + i * H, f"s{i}", story="feature", messages=msgs,
                          payload={"product_id": "suv-x"}))
        got.append(d.trigger and (d.trigger["message"], d.trigger["channel"], d.trigger["payload"]))
    assert got[:3] == [("banner-1", "display", {"product_id": "suv-x", "slot": "top"}),
                       ("interstitial-2", "web", {"product_id": "suv-x"}),
                       ("video-3", "video", {"product_id": "suv-y"})]
    assert got[3] is None
    d = g.decide(cand(T0 + 5 * H, "s5", story="feature", messages=msgs))
    assert reason(d) == "sequence_exhausted" and d.suppression["detail"].startswith("story feature")


# -- channel choice ------------------------------------------------------------------------------
def test_channel_choice_by_preference():
    _, g = gate(channel_cost={"sms": 0.05})
    assert g.decide(cand(T0, "a", channels=("push", "sms"))).trigger["channel"] == "push"
    consent(g, T0, "sms", True, preferred_channels=["sms"])
    d = g.decide(cand(T0 + DAY_MS, "b", channels=("push", "sms")))
    assert d.trigger["channel"] == "sms"  # 1.0 preference beats 10 * 0.05 cost


def test_channel_choice_by_engagement_within_the_window():
    _, g = gate(engagement_window=30 * DAY_MS)
    for i in range(3):
        g.observe(ev("sms_click", T0 - 40 * DAY_MS + i, channel="sms"))  # too old
    assert g.decide(cand(T0, "a", channels=("push", "sms"))).trigger["channel"] == "push"
    for i in range(3):
        g.observe(ev("sms_click", T0 - DAY_MS + i, channel="sms"))
    assert g.decide(cand(T0 + 1, "b", channels=("push", "sms"))).trigger["channel"] == "sms"


def test_channel_choice_by_cost():
    _, g = gate(default_opt_in={"email": True, "display": True},
                channel_cost={"email": 0.001, "display": 0.004})
    assert g.decide(cand(T0, "a", channels=("display", "email"))).trigger["channel"] == "email"
    _, g = gate(weights=Weights(cost=0.0), default_opt_in={"email": True, "display": True},
                channel_cost={"email": 0.001, "display": 0.004})
    assert g.decide(cand(T0, "a", channels=("display", "email"))).trigger["channel"] == "display"
