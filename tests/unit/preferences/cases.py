"""Shared builders for the preference-gate tests: a gate, candidates, events, consent,
decision reasons."""
from __future__ import annotations

from datetime import datetime

from streams.moments.candidate import Candidate
from streams.preferences.gate import Decision, GateConfig, PreferenceGate
from streams.state import BatchState

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
