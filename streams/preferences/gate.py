"""The preferences gate: applies each person's preferences to every candidate trigger.

Pure domain core (no Faust, no Kafka). `PreferenceGate.observe()` runs for every stitched event and
records what the gate needs (consent, time zone, engagement); `decide()` runs per `Candidate` and
returns a `Decision`: a trigger to send, or a suppression with a reason (plus `defer_until` when
deferred). Checks, in this order; the first that fails names the suppression:

  a. duplicate             the trigger_id was already sent, deferred or held out for this profile
                           (a released deferral is the same trigger coming back, not a duplicate)
  b. cooldown              a trigger of the same rule (sent, deferred, held out) within cooldown_ms
  c. sequence_exhausted    story rules: every message of the story was already sent to this person;
                           else the next unsent message gives the channels and extends the payload
  d. opt_out               no allowed channel is opted in. Per channel, the latest consent by event
                           time among that channel's and "all" (a tie goes to the channel's own),
                           else config.default_opt_in (False when not listed)
  e. frequency_cap         every opted-in channel is capped: sent triggers on the person's local
                           calendar day (tz: recorded, else the candidate's hint, else default_tz),
                           overall and per channel, and the rolling windows (c.at - window, c.at]
  f. holdout               the global holdout, by a stable hash of the profile id; recorded but not
                           counted for caps
  g. quiet_hours_deferred  (not when released) c.at is inside the person's quiet hours: recorded as
                           deferred, `defer_until` = end of the quiet window in UTC epoch ms
  h. holdout               the rule's experiment (or its `holdout`: a control arm): the profile
                           enters it here, once, in its arm (`streams.experiments.exposures`); a
                           control arm's entry is withheld, recorded like f, with `experiment`
                           and `arm`. The arm's overrides (channels, payload) apply from d on.

Otherwise the best channel among the allowed, opted-in, uncapped ones is chosen (preference,
engagement, cost; ties by the allowed order) and the trigger is recorded as sent.

State: one value per profile under key = profile_id (JSON plain data, short keys, bounded):
    "c":  {channel | "all": [t, opt_in]}   latest consent per channel (t = event time, ms; on a tie
                                         opt-out wins)
    "z":  [t, tz]                         latest valid time zone (t is not refreshed by later events
                                         with the same tz, to avoid a write per event)
    "q":  [t, "HH:MM-HH:MM" | ""]         quiet hours set by the person ("" = none)
    "m":  [t, max_per_day]                the person's daily cap
    "p":  [t, [channel, ...]]             preferred channels
    "e":  {channel: [t, ...]}             engagement times, ascending, <= 20 within the window
    "s":  [[t, kind, channel, rule, trigger_id, cooldown_ms], ...]   kind "s" sent, "d" deferred,
          "h" held out; ascending by t, <= 50, kept while within max(2 days, longest rolling
          window, the record's own cooldown) of the newest record
    "st": {story: [message_id, ...]}      messages sent per story (not pruned by time)
    "x":  {experiment: entry}             its experiment entries (streams.experiments.exposures)
A key is absent until needed. Values read with `get()` are never mutated unless pending.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from streams.experiments.exposures import ExposureRow, enter, entry_arm, merge_entries, on_goal
from streams.experiments.model import Experiment
from streams.moments.candidate import Candidate
from streams.preferences.config import (
    DAY_MS,
    GateConfig,
    Weights,
    fmt_ms,
    hhmm,
    parse_duration,
    quiet_window,
    zone_info,
)
from streams.preferences.consent import consent_of, newer_consent, opted_in
from streams.preferences.decision import Decision, Suppression, Trigger
from streams.preferences.quiet import quiet_end
from streams.state import BatchState

__all__ = ["Decision", "GateConfig", "PreferenceGate", "Suppression", "Trigger", "Weights",
           "parse_duration"]

MAX_RECORDS = 50
MAX_ENGAGEMENTS = 20
ENGAGEMENT_TYPES = {"email_open": "email", "email_click": "email", "push_open": "push",
                    "sms_click": "sms", "app_open": "app", "click": ""}  # type -> fallback channel


def _iso(ms: int, zone=timezone.utc) -> str:
    return datetime.fromtimestamp(ms / 1000, zone).isoformat(timespec="minutes")


# -- the gate ----------------------------------------------------------------------------------
_DAY_REACH_MS = 27 * 3_600_000  # a local day lasts at most 25 h, offsets move by at most 2 h


class PreferenceGate:
    """Per-profile preferences over a `BatchState` (see the module docstring for the layout)."""

    def __init__(self, state: BatchState, config: GateConfig,
                 experiments: dict[str, Experiment] | None = None) -> None:
        self._state = state
        self.config = config
        self.experiments = dict(experiments or {})  # by id: what the entries' goals are
        self._goal_types = frozenset(t for e in self.experiments.values() for t in e.goal_types)
        self._horizon = max([2 * DAY_MS] + [w for w, _ in config.rolling])
        self._quiet_default = (quiet_window("-".join(config.quiet_hours))
                               if config.quiet_hours else None)
        self._defaults = consent_of(None, config.default_opt_in)  # no choice made yet

    def _own(self, pid: str, st: dict | None) -> dict:
        """A value for `pid` that may be changed in place: the pending one, else a copy, set once.
        Nested dicts are copied; nested lists are never mutated, only replaced."""
        if st is not None and self._state.is_pending(pid):
            return st
        st = {} if st is None else {k: dict(v) if type(v) is dict else v for k, v in st.items()}
        self._state.set(pid, st)
        return st

    def _bound_records(self, recs: list) -> list:
        recs.sort(key=lambda r: r[0])
        newest, horizon = recs[-1][0], self._horizon
        return [r for r in recs if newest - r[0] < max(horizon, r[5])][-MAX_RECORDS:]

    def _bound_times(self, times) -> list:
        times = sorted(set(times))
        floor = times[-1] - self.config.engagement_window
        return [t for t in times if t > floor][-MAX_ENGAGEMENTS:]

    # -- observe (hot path) -------------------------------------------------------------------
    def observe(self, tp: dict) -> None:
        """Record consent, time zone and engagement of one stitched event; writes only on change."""
        pid = tp.get("profile_id")
        if not pid:
            return
        typ, ctx, t = tp.get("type"), tp.get("context"), tp.get("event_time")
        tz = ctx.get("tz") if ctx else None
        if t is None:
            return
        if typ == "consent":
            self._observe_consent(pid, tp, tz, t)
            return
        fallback = ENGAGEMENT_TYPES.get(typ)
        if not tz and fallback is None:
            return
        st = self._state.get(pid)
        if tz:
            z = st.get("z") if st else None
            # [when the zone last changed, zone]: set on a change only, never refreshed when
            # the key happens to be written anyway, so it does not depend on the batching
            if (z is None or z[1] != tz) and (z is None or t >= z[0]) \
                    and zone_info(tz) is not None:
                st = self._own(pid, st)
                st["z"] = [t, tz]
        channel = fallback is not None and (tp.get("channel") or fallback)
        if channel:
            times = st.get("e", {}).get(channel, []) if st else []
            new = self._bound_times([*times, t])
            if new != list(times):  # not a replay, not too old
                self._own(pid, st).setdefault("e", {})[channel] = new

    def converted(self, tp: dict) -> list[ExposureRow]:
        """The rows of the profile's experiment entries this event converts (a goal in their
        window): for every event, late ones too."""
        if tp.get("type") not in self._goal_types or not tp.get("profile_id"):
            return []
        pid = tp["profile_id"]
        st = self._state.get(pid)
        if not st or not st.get("x"):
            return []
        entries = dict(st["x"])
        rows = on_goal(entries, self.experiments, pid, tp)
        if rows:
            self._own(pid, st)["x"] = entries
        return rows

    def _observe_consent(self, pid: str, tp: dict, tz: Any, t: int) -> None:
        props = tp.get("properties") or {}
        st = self._state.get(pid)
        channel, opt_in = props.get("channel"), props.get("opt_in")
        if isinstance(channel, str) and channel and type(opt_in) is bool:
            cur = st.get("c", {}).get(channel) if st else None
            if newer_consent([t, opt_in], cur) and cur != [t, opt_in]:
                st = self._own(pid, st)
                st.setdefault("c", {})[channel] = [t, opt_in]
        found: dict[str, Any] = {"z": next((n for n in (props.get("tz"), tz) if zone_info(n)),
                                           None)}
        if "quiet_hours" in props:  # "" (or null) = no quiet hours for this person
            q = props["quiet_hours"]
            found["q"] = hhmm(quiet_window(q)) if quiet_window(q) else (None if q else "")
        m, p = props.get("max_per_day"), props.get("preferred_channels")
        if type(m) is int and m >= 0:
            found["m"] = m
        if isinstance(p, list) and all(isinstance(x, str) for x in p):
            found["p"] = list(p)
        for key, value in found.items():
            cur = st.get(key) if st else None
            if value is not None and (cur is None or (t >= cur[0] and cur != [t, value])):
                st = self._own(pid, st)
                st[key] = [t, value]

    # -- decide -------------------------------------------------------------------------------
    def decide(self, c: Candidate, *, released: bool = False) -> Decision:
        """Apply the checks a-h of the module docstring to a candidate; records what it decides."""
        raw = self._state.get(c.profile_id)
        st = raw or {}
        recs = st.get("s", ())
        for r in recs:  # a. duplicate
            if r[4] == c.trigger_id and not (released and r[1] == "d"):
                word = {"s": "sent", "d": "deferred", "h": "held out"}[r[1]]
                return self._suppress(c, "duplicate", r[2], f"already {word} at {_iso(r[0])}")
        for r in recs if c.cooldown_ms > 0 else ():  # b. cooldown
            if r[3] == c.rule and r[4] != c.trigger_id and abs(c.at - r[0]) < c.cooldown_ms:
                return self._suppress(c, "cooldown", r[2], f"{c.rule} cooldown "
                                      f"{fmt_ms(c.cooldown_ms)}: trigger {r[4]} at {_iso(r[0])}")
        channels, payload, message = c.channels, dict(c.payload), ""
        if c.story and c.messages:  # c. sequence
            done = st.get("st", {}).get(c.story, ())
            nxt = next((msg for msg in c.messages if msg.id not in done), None)
            if nxt is None:
                return self._suppress(c, "sequence_exhausted", "", f"story {c.story}: all "
                                      f"{len(c.messages)} messages sent")
            channels, message = nxt.channels, nxt.id
            payload.update(nxt.payload)
        exp = c.experiment
        arm = entry_arm(st.get("x"), exp, c.profile_id) if exp is not None else None
        if arm is not None and arm.action:  # the arm's overrides of the action
            channels = tuple(arm.action.get("channels", channels))
            payload.update(c.filled(arm.action.get("payload", {})))
        consent, opted, why = st.get("c", {}), [], []
        for ch in channels:  # d. opt-in
            ok, note = opted_in(consent, ch, self.config.default_opt_in)
            opted.append(ch) if ok else why.append(f"{ch}: {note}")
        if not opted:
            return self._suppress(c, "opt_out", "", "; ".join(why) or "no allowed channel")
        zname = next((n for n in ((st.get("z") or (0, None))[1], c.tz_hint,
                                  self.config.default_tz) if zone_info(n) is not None), "UTC")
        zone = zone_info(zname)
        free, detail = self._uncapped(c, st, opted, zname, zone)  # e. caps
        if not free:
            return self._suppress(c, "frequency_cap", self._best(c, st, opted), detail)
        channel, pid = self._best(c, st, free), c.profile_id
        share = self.config.holdout  # f. the global holdout, by a stable hash of the profile
        if share > 0 and int.from_bytes(hashlib.sha256(f"holdout:{pid}".encode()).digest()[:8],
                                        "big") < share * 2 ** 64:
            self._record(c, raw, "h", channel)
            return self._suppress(c, "holdout", channel, f"global holdout {share * 100:g}%")
        q = st.get("q")  # g. quiet hours
        window = (quiet_window(q[1]) if q[1] else None) if q else self._quiet_default
        end = None if released or window is None else quiet_end(c.at, zone, *window)
        if end is not None:
            self._record(c, raw, "d", channel)
            sup = self._suppress(c, "quiet_hours_deferred", channel, f"quiet hours "
                                 f"{hhmm(window)} {zname}, deferred to {_iso(end, zone)}")
            return Decision(None, sup.suppression, end)
        exposure = None
        if exp is not None:  # h. the experiment: the profile enters (once), in its arm
            raw = self._own(pid, raw)
            exposure = enter(raw.setdefault("x", {}), exp, arm, pid, c.rule, c.trigger_id, c.at)
            if arm.control:
                self._record(c, raw, "h", channel)
                sup = self._suppress(c, "holdout", channel, f"experiment {exp.id}: control arm "
                                     f"{arm.id} ({arm.share * 100:g}%)", exp.id, arm.id)
                return Decision(suppression=sup.suppression, exposure=exposure)
        self._record(c, raw, "s", channel, message)
        if c.code:
            payload["code"] = c.code
        return Decision(trigger={
            "trigger_id": c.trigger_id, "profile_id": pid, "moment": c.rule, "rule": c.rule,
            "channel": channel, "event_id": c.event_id, "fired_at": c.at, "code": c.code,
            "story": c.story or "", "message": message, "matched": list(c.matched),
            "reason": c.reason(), "payload": {str(k): str(v) for k, v in payload.items()},
            "experiment": exp.id if exp is not None else "",
            "arm": arm.id if exp is not None else ""}, exposure=exposure)

    def _uncapped(self, c: Candidate, st: dict, opted: list, zname: str, zone: ZoneInfo):
        """(the channels of `opted` under every cap, a text of the caps reached)."""
        sent = [r for r in st.get("s", ()) if r[1] == "s"]
        day = datetime.fromtimestamp(c.at / 1000, zone).date()
        near = c.at - _DAY_REACH_MS, c.at + _DAY_REACH_MS  # only these can share its local date
        today = [r for r in sent if near[0] < r[0] < near[1]
                 and datetime.fromtimestamp(r[0] / 1000, zone).date() == day]
        where = f"today ({zname} {day.isoformat()})"
        limit = (st.get("m") or (0, self.config.max_per_day))[1]
        hit = [f"all channels: {len(today)} of {limit} {where}"] if len(today) >= limit else []
        for window, most in self.config.rolling:
            n = sum(1 for r in sent if c.at - window < r[0] <= c.at)
            if n >= most:
                hit.append(f"{fmt_ms(window)} rolling: {n} of {most}")
        if hit:
            return [], "; ".join(hit)
        free, caps = [], self.config.max_per_day_channel
        for ch in opted:
            n = sum(1 for r in today if r[2] == ch)
            if ch in caps and n >= caps[ch]:
                hit.append(f"{ch}: {n} of {caps[ch]} {where}")
            else:
                free.append(ch)
        return free, "; ".join(hit)

    def _best(self, c: Candidate, st: dict, channels) -> str:
        """The channel of best score; ties go to the first in the allowed order."""
        w, cost = self.config.weights, self.config.channel_cost
        preferred = (st.get("p") or (0, ()))[1]
        eng, floor = st.get("e", {}), c.at - self.config.engagement_window
        best, best_score = "", None
        for ch in channels:
            n = sum(1 for t in eng.get(ch, ()) if floor < t <= c.at)
            score = (w.preference * (ch in preferred) + w.engagement * min(1.0, n / 3)
                     - w.cost * cost.get(ch, 0.0))
            if best_score is None or score > best_score:
                best, best_score = ch, score
        return best

    def _record(self, c: Candidate, raw: dict | None, kind: str, channel: str,
                message: str = "") -> None:
        st = self._own(c.profile_id, raw)
        recs = [r for r in st.get("s", ()) if r[4] != c.trigger_id]
        recs.append([c.at, kind, channel, c.rule, c.trigger_id, c.cooldown_ms])
        st["s"] = self._bound_records(recs)
        if kind == "s" and c.story and message:
            done = st.setdefault("st", {}).get(c.story, [])
            st["st"][c.story] = done if message in done else [*done, message]

    @staticmethod
    def _suppress(c: Candidate, reason: str, channel: str, detail: str, experiment: str = "",
                  arm: str = "") -> Decision:
        sid = hashlib.sha256(f"{c.trigger_id}:{reason}".encode()).hexdigest()[:32]
        return Decision(suppression={
            "suppression_id": sid, "trigger_id": c.trigger_id, "profile_id": c.profile_id,
            "moment": c.rule, "rule": c.rule, "channel": channel, "event_id": c.event_id,
            "reason": reason, "detail": detail, "at": c.at, "experiment": experiment,
            "arm": arm})

    # -- identity events ----------------------------------------------------------------------
    def on_merge(self, survivor: str, absorbed: list[str]) -> list[ExposureRow]:
        """Fold the absorbed profiles' state into the survivor's, then delete the absorbed keys.
        Returns the experiment rows that change (streams.experiments.exposures.merge_entries)."""
        others, entries = [], {}
        for pid in dict.fromkeys(absorbed):
            if pid != survivor and pid in self._state:
                others.append(self._state.get(pid))
                self._state.delete(pid)
                if others[-1] and others[-1].get("x"):
                    entries[pid] = others[-1]["x"]
        if not any(others):
            return []
        st = self._own(survivor, self._state.get(survivor))
        rows = []
        if entries:
            kept = dict(st.get("x", {}))
            rows = merge_entries(survivor, kept, entries, self.experiments)
            st["x"] = kept
        consent, eng = st.setdefault("c", {}), st.setdefault("e", {})
        stories = st.setdefault("st", {})
        for o in filter(None, others):
            for ch, v in o.get("c", {}).items():
                if newer_consent(v, consent.get(ch)):
                    consent[ch] = v
            for key in ("z", "q", "m", "p"):
                if key in o and (key not in st or o[key][0] > st[key][0]):
                    st[key] = o[key]
            if o.get("s"):  # one record per trigger_id: a sent one first, else the latest
                by_id = {r[4]: r for r in st.get("s", ())}
                for r in o["s"]:
                    cur = by_id.get(r[4])
                    if cur is None or (r[1] == "s", r[0]) > (cur[1] == "s", cur[0]):
                        by_id[r[4]] = r
                st["s"] = self._bound_records(list(by_id.values()))
            for ch, times in o.get("e", {}).items():
                eng[ch] = self._bound_times([*eng.get(ch, ()), *times])
            for story, ids in o.get("st", {}).items():
                done = stories.get(story, [])
                stories[story] = done + [i for i in ids if i not in done]
        for key in [k for k in ("c", "e", "st") if not st[k]]:
            del st[key]
        return rows

    def consent(self, profile_id: str) -> dict[str, bool]:
        """The person's consent per channel (`streams.preferences.consent`; read-only)."""
        st = self._state.get(profile_id)
        if not st or not st.get("c"):
            return self._defaults
        return consent_of(st, self.config.default_opt_in)

    def export(self, profile_id: str) -> dict | None:
        """The profile's preferences, caps and engagement, removed from here (a hand-off)."""
        state = self._state.get(profile_id)
        if state is not None:
            self._state.delete(profile_id)
        return state

    def adopt(self, profile_id: str, state: dict) -> None:
        """Put a state `export` gave (from another shard) back under `profile_id`."""
        self._state.set(profile_id, state)

    def on_forget(self, profile_id: str) -> None:
        """Erase everything the gate holds about a profile (right to be forgotten)."""
        if profile_id in self._state:
            self._state.delete(profile_id)
