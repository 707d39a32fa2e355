"""The preferences gate: each suppression reason, time zones and DST, channel choice, state contract."""
from __future__ import annotations

import copy
import hashlib
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.moments.candidate import Candidate
from streams.moments.gate import DAY_MS, Decision, GateConfig, PreferenceGate, Weights, parse_duration
from streams.moments.rules import Message
from streams.state import BatchState

PACK = Path(__file__).resolve().parents[1] / "streams" / "moments" / "pack" / "default.yaml"
H = 3_600_000


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def gate(backing=None, **kw) -> tuple[BatchState, PreferenceGate]:
    """A gate with no quiet hours, push/sms/email opted in by default, unless overridden."""
    conf = {"quiet_hours": None, "default_opt_in": {"push": True, "sms": True, "email": True}, **kw}
    state = BatchState({} if backing is None else backing)
    return state, PreferenceGate(state, GateConfig(**conf))


def cand(at: int, tid: str = "t1", rule: str = "r", pid: str = "p1", channels=("push",), **kw):
    return Candidate(rule=rule, profile_id=pid, trigger_id=tid, at=at, event_id=f"e-{tid}",
                     matched=[f"e-{tid}"], channels=tuple(channels), **kw)


def ev(type_: str, t: int, pid: str = "p1", channel: str = "web", tz: str | None = None, **props):
    return {"event_id": f"e{t}", "event_time": t, "type": type_, "channel": channel,
            "profile_id": pid, "context": {"tz": tz} if tz else {}, "properties": props}


def consent(g, t, channel, opt_in, pid="p1", tz=None, **props):
    """A consent event for `channel` (properties.channel) from the preference centre."""
    event = ev("consent", t, pid, tz=tz, **props, opt_in=opt_in)
    event["properties"]["channel"] = channel
    g.observe(event)


def reason(d: Decision) -> str:
    return "sent" if d.trigger else d.suppression["reason"]


T0 = ms("2026-11-20T12:00+00:00")


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
        "payload": {"offer": "today_only", "n": "3", "code": "XPGJRL"}}


def test_duplicate_trigger_id_is_suppressed_with_a_deterministic_id():
    _, g = gate()
    assert reason(g.decide(cand(T0))) == "sent"
    d = g.decide(cand(T0 + 1000))
    s = d.suppression
    assert d.trigger is None and s["reason"] == "duplicate" and s["channel"] == "push"
    assert s["suppression_id"] == hashlib.sha256(b"t1:duplicate").hexdigest()[:32]
    assert set(s) == {"suppression_id", "trigger_id", "profile_id", "moment", "rule", "channel",
                      "event_id", "reason", "detail", "at"}
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
    pid = next(f"p{i}" for i in range(1000)
               if int.from_bytes(hashlib.sha256(f"holdout:r:p{i}".encode()).digest()[:8], "big")
               / 2 ** 64 < 0.5)
    d = g.decide(cand(T0, "a", pid=pid, holdout_pct=0.5, cooldown_ms=H))
    assert reason(d) == "holdout" and d.suppression["channel"] == "push"
    assert reason(g.decide(cand(T0, "a", pid=pid, holdout_pct=0.5))) == "duplicate"
    assert reason(g.decide(cand(T0 + 1, "b", pid=pid, holdout_pct=0.5, cooldown_ms=H))) == "cooldown"
    assert reason(g.decide(cand(T0 + 2, "c", rule="other", pid=pid))) == "sent"  # cap not used


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
    assert len(times) == 20 and times == sorted(times) and times[-1] == T0 + 59_000


def test_sent_records_are_bounded_and_pruned():
    state, g = gate(max_per_day=1000, max_per_day_channel={})
    for i in range(80):
        g.decide(cand(T0 + i * 60_000, f"t{i}"))
    assert len(state.get("p1")["s"]) == 50
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


# -- configuration -------------------------------------------------------------------------------
def test_from_dict_reads_the_default_pack():
    prefs = yaml.safe_load(PACK.read_text())["preferences"]
    cfg = GateConfig.from_dict(prefs)
    assert cfg.default_tz == "Europe/Paris" and cfg.quiet_hours == ("21:00", "08:00")
    assert cfg.max_per_day == 3 and cfg.max_per_day_channel == {"push": 1, "sms": 1, "email": 2}
    assert cfg.rolling == ((7 * DAY_MS, 8),) and cfg.holdout == 0.05
    assert cfg.default_opt_in["display"] is True and cfg.default_opt_in["push"] is False
    assert cfg.channel_cost["sms"] == 0.05 and cfg.weights == Weights(1.0, 0.5, 10.0)
    assert cfg.engagement_window == 30 * DAY_MS


def test_from_dict_defaults_and_variants():
    assert GateConfig.from_dict({}) == GateConfig() == GateConfig.from_dict(None)
    assert GateConfig().quiet_hours == ("21:00", "08:00") and GateConfig().max_per_day == 3
    cfg = GateConfig.from_dict({"holdout": "5%", "quiet_hours": None, "engagement_window": 1000,
                                "weights": {"cost": 2}})
    assert cfg.holdout == 0.05 and cfg.quiet_hours is None and cfg.engagement_window == 1000
    assert cfg.weights == Weights(1.0, 0.5, 2.0)
    assert GateConfig.from_dict({"quiet_hours": "9:05-7:00"}).quiet_hours == ("09:05", "07:00")


@pytest.mark.parametrize("prefs, message", [
    ({"quiet_hours": "25:00-08:00"}, "quiet_hours: '25:00-08:00' is not HH:MM-HH:MM"),
    ({"quiet_hours": "evening"}, "quiet_hours: 'evening' is not HH:MM-HH:MM"),
    ({"default_tz": "Europe/Pariss"}, "default_tz: unknown time zone 'Europe/Pariss'"),
    ({"unknwn": 1}, "unknwn: unknown key (known: default_tz, quiet_hours,"),
    ({"max_per_day": -1}, "max_per_day: expected an integer >= 0, got -1"),
    ({"max_per_day": "3"}, "max_per_day: expected an integer >= 0, got '3'"),
    ({"max_per_day_channel": {"push": 1.5}}, "max_per_day_channel: push: expected an integer"),
    ({"rolling": [{"window": "7x", "max": 8}]}, "rolling: [0]: bad duration '7x'"),
    ({"rolling": [{"window": "7d"}]}, "rolling: [0]: expected {window: duration, max: int}"),
    ({"rolling": {"window": "7d"}}, "rolling: expected a list"),
    ({"default_opt_in": {"push": "yes"}}, "default_opt_in: push: expected true or false"),
    ({"holdout": 1.5}, "holdout: must be within 0..1"),
    ({"holdout": "five"}, "holdout: expected a share 0..1 or a percentage"),
    ({"channel_cost": {"sms": "cheap"}}, "channel_cost: sms: expected a number"),
    ({"weights": {"price": 1}}, "weights: price: unknown key (known: preference, engagement, cost)"),
    ({"engagement_window": "0s"}, "engagement_window: duration must be > 0"),
    ("nope", "preferences: expected a mapping"),
])
def test_from_dict_errors_are_readable(prefs, message):
    with pytest.raises(ValueError) as err:
        GateConfig.from_dict(prefs)
    assert str(err.value).startswith(message)


def test_parse_duration():
    assert [parse_duration(x) for x in ("500ms", "30s", "5m", "1h", "1d", "2w", "1.5h", 250)] == [
        500, 30_000, 300_000, H, DAY_MS, 14 * DAY_MS, 5_400_000, 250]
    for bad in ("", "5 minutes", "-1s", True, -5, None, 1.5):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)


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
        assert len(value.get("s", ())) <= 50
        assert all(len(v) <= 20 for v in value.get("e", {}).values())
