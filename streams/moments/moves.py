"""What joins or leaves a profile's moment state: merges, erasure, hand-offs between shards, and
the triggers deferred to the end of quiet hours.

`ProfileMoves` is mixed into `streams.moments.engine.MomentEngine` (it uses the engine's
`moments` state, `timers`, `rules` and `_profile`). An absence's timer is one per (profile,
rule, `same` key), `absence_timer_key`: a merge moves it to the survivor under a new key.
"""
from __future__ import annotations

import hashlib

from streams.eventtime.timers import timer_key
from streams.moments.candidate import Candidate, candidate_for

__all__ = ["MAX_ENTRIES", "ProfileMoves", "absence_timer_key"]

MAX_ENTRIES = 64  # per rule and profile: bounds the state of a very busy profile


class ProfileMoves:
    """The engine's merges, erasure, export / adopt and deferrals (see the module docstring)."""

    # -- merges and erasure ------------------------------------------------------------------------
    def on_merge(self, survivor: str, absorbed: list) -> None:
        for pid in absorbed:
            old = self.moments.get(pid)
            if old is None:
                continue
            state = self._profile(survivor)
            if "loc" in old and ("loc" not in state or old["loc"][2] > state["loc"][2]):
                state["loc"] = list(old["loc"])
            if "int" in old:
                merged = state.get("int", []) + [list(x) for x in old["int"]]
                state["int"] = sorted(merged)[-MAX_ENTRIES:]
            for name in ("seq", "cnt", "mis"):
                for rid, items in old.get(name, {}).items():
                    merged = state.setdefault(name, {}).get(rid, []) + [list(x) for x in items]
                    merged.sort(key=lambda x: tuple(x[:2]))
                    state[name][rid] = merged[-MAX_ENTRIES:]
            for rid, pending in old.get("abs", {}).items():
                mine = dict(state.setdefault("abs", {}).get(rid, {}))
                for key, (t, eid, tkey) in pending.items():
                    value = self.timers.get(tkey)
                    self.timers.delete(tkey)
                    if value is None:
                        continue
                    current = mine.get(key)
                    if current is not None and (current[0], current[1]) >= (t, eid):
                        continue
                    if current is not None:
                        self.timers.delete(current[2])
                    new_key = absence_timer_key(value["at"], survivor, rid, key)
                    self.timers.add(new_key, {**value, "p": survivor})
                    mine[key] = [t, eid, new_key]
                state["abs"][rid] = mine
            self.moments.delete(pid)
        self._move_deferred(survivor, absorbed)

    def _move_deferred(self, survivor: str, absorbed: list) -> None:
        moved = []
        for pid in absorbed:
            for key in (self.moments.get(pid) or {}).get("def", ()):
                value = self.timers.get(key)
                self.timers.delete(key)
                if value is not None:
                    moved.append({**value, "p": survivor})
        if moved:
            state = self._profile(survivor)
            for value in moved:
                state["def"] = state.get("def", []) + [self._add_deferred_timer(value)]

    def on_forget(self, profile_id: str) -> None:
        state = self.moments.get(profile_id)
        if state is None:
            return
        for pending in state.get("abs", {}).values():
            for _t, _eid, tkey in pending.values():
                self.timers.delete(tkey)
        for key in state.get("def", ()):
            self.timers.delete(key)
        self.moments.delete(profile_id)

    def export(self, profile_id: str) -> dict | None:
        """The profile's state and its timers (absences, deferred triggers), removed from here."""
        state = self.moments.get(profile_id)
        if state is None:
            return None
        keys = [tkey for pending in state.get("abs", {}).values()
                for _t, _eid, tkey in pending.values()] + list(state.get("def", ()))
        timers = {}
        for key in keys:
            value = self.timers.get(key)
            if value is not None:
                timers[key] = value
                self.timers.delete(key)
        self.moments.delete(profile_id)
        return {"state": state, "timers": timers}

    def adopt(self, profile_id: str, exported: dict) -> None:
        """Put a state `export` gave (from another shard) back under `profile_id`."""
        self.moments.set(profile_id, exported["state"])
        for key, value in exported["timers"].items():
            self.timers.add(key, value)

    # -- deferred triggers (quiet hours) -----------------------------------------------------------
    def defer(self, cand: Candidate, until: int) -> None:
        """Keep `cand` until the watermark passes `until` (the end of the person's quiet hours)."""
        value = {"k": "deferred", "at": until, "p": cand.profile_id, "r": cand.rule,
                 "c": {"trigger_id": cand.trigger_id, "at": cand.at, "event_id": cand.event_id,
                       "matched": cand.matched, "b": cand.bindings}}
        state = self._profile(cand.profile_id)
        state["def"] = state.get("def", []) + [self._add_deferred_timer(value)]

    def _add_deferred_timer(self, value: dict) -> str:
        key = timer_key(value["at"], value["p"], value["r"], value["c"]["trigger_id"][:12])
        self.timers.add(key, value)
        return key

    def released(self, key: str, value: dict) -> Candidate | None:
        """The candidate of a deferred timer that fired, at its release time."""
        pid = value["p"]
        state = self.moments.get(pid)
        if state is not None and key in state.get("def", ()):
            self._profile(pid)["def"] = [k for k in state["def"] if k != key]
        compiled = self.rules.get(value["r"])
        if compiled is None:
            return None
        c = value["c"]
        return candidate_for(compiled.rule, pid, c["trigger_id"], value["at"], c["event_id"],
                          list(c["matched"]), c.get("b") or {})


def absence_timer_key(deadline: int, pid: str, rid: str, key: str) -> str:
    """The timer of an absence: one per (profile, rule, `same` key)."""
    return timer_key(deadline, pid, rid,
                     hashlib.sha256(key.encode()).hexdigest()[:12] if key else "-")
