"""The moment engine: per-profile rule evaluation on event time, with absence timers.

Pure: state lives in a `BatchState` `moments` (one value per profile) and in the pipeline's `Timers`
(one key per pending absence or deferred trigger, so a restarted worker finds them in its recovered
table; the pipeline fires them when the watermark passes and hands them back here).

Per profile (`moments[profile_id]`), only what the rules need, pruned to their windows:
  "loc": [lat, lon, time]                last known position (stock joins on the nearest store)
  "int": [[time, product_id], ...]       product interest (profile conditions `min_interest`)
  "seq": {rule: [[time, event_id, step, key, bindings], ...]}   events matching a sequence step
  "cnt": {rule: [[time, event_id, key, bindings], ...]}         events matching a count
  "abs": {rule: {key: [time, event_id, timer_key]}}   pending absence per `same` key
  "mis": {rule: [[time, key], ...]}                   recent "missing" events of an absence

Out-of-order events (within the allowed lateness) are inserted at their place in time: a sequence
or a count is matched over the events in time order, whatever their arrival order; an absence is
cancelled by a "missing" event that arrived before or after its anchor. The events a match used are
consumed, so one sequence or count fires once. Timers fire when the watermark passes them, in
(deadline, key) order, so the outcome does not depend on how events were batched. Merges,
erasure, hand-offs and deferred triggers are `streams.moments.moves`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

from streams.eventtime.timers import Timers
from streams.moments.candidate import Candidate, candidate_for
from streams.moments.matching import chain_bindings, count_match, sequence_match
from streams.moments.moves import MAX_ENTRIES, ProfileMoves, absence_timer_key
from streams.moments.rules.model import (
    AbsencePattern,
    CountPattern,
    EventPattern,
    Rule,
    RulePack,
    SequencePattern,
)
from streams.moments.rules.predicates import Matcher, compile_predicate, field_getter
from streams.moments.rules.syntax import TRAIT_PLACEHOLDER
from streams.state import BatchState
from streams.traits.audiences import trait_check
from streams.traits.profile import IDENTIFIED_TYPES
from streams.traits.records import payload_traits, placeholder_text

INTEREST_TYPES = frozenset({"product_view", "price_view", "page_view"})


def trigger_id(rule: str, profile_id: str, window: str) -> str:
    """Deterministic id of a moment: the same rule, profile and window always give the same id."""
    return hashlib.sha256(f"{rule}|{profile_id}|{window}".encode()).hexdigest()[:32]


def _same_key(getters, tp: dict) -> str:
    if not getters:
        return ""
    return "\x1f".join("" if (v := g(tp)) is None else str(v) for g in getters)


@dataclass
class _Compiled:
    rule: Rule
    kind: str
    # event: (match,), sequence: steps, absence: (after, missing), count: (match,)
    matchers: tuple[Matcher, ...]
    same: tuple


class MomentEngine(ProfileMoves):
    def __init__(self, pack: RulePack, moments: BatchState, timers: Timers, refs,
                 identifiers_of: Callable[[str], list] | None = None,
                 traits_of: Callable[[str], dict] | None = None):
        self.pack = pack
        self.moments = moments
        self.timers = timers
        self.identifiers_of = identifiers_of or (lambda _pid: [])
        self.traits_of = traits_of or (lambda _pid: {})
        self.trait_tests: dict[str, Callable] = {}  # rule -> its profile's trait test
        self.trait_names: dict[str, tuple[str, ...]] = {}  # rule -> traits its payloads show
        self.rules: dict[str, _Compiled] = {}
        self.by_type: dict[str, list[tuple[_Compiled, int]]] = {}
        self.any_type: list[tuple[_Compiled, int]] = []
        self.interest_ms = max((r.profile.interest_window_ms for r in pack.rules
                                if r.profile and r.profile.min_interest > 0), default=0)
        self.uses_location = False
        for rule in pack.rules:
            self._compile(rule, refs)

    # -- compilation -------------------------------------------------------------------------------
    def _compile(self, rule: Rule, refs) -> None:
        p = rule.pattern
        if isinstance(p, EventPattern):
            preds, same = (p.match,), ()
        elif isinstance(p, SequencePattern):
            preds, same = p.steps, p.same
        elif isinstance(p, AbsencePattern):
            preds, same = (p.after, p.missing), p.same
        elif isinstance(p, CountPattern):
            preds, same = (p.match,), p.same
        else:  # pragma: no cover - the loader builds only these
            raise TypeError(f"rule {rule.id}: unknown pattern {p!r}")
        for pred in preds:
            if pred.in_stock is not None and pred.in_stock.store == "nearest":
                self.uses_location = True
        if rule.profile is not None and rule.profile.trait is not None:
            self.trait_tests[rule.id] = trait_check(rule.profile.trait)
        names = payload_traits(rule)
        if names:
            self.trait_names[rule.id] = names
        compiled = _Compiled(rule, p.kind, tuple(compile_predicate(x, refs) for x in preds),
                             tuple(field_getter(f) for f in same))
        self.rules[rule.id] = compiled
        handler = getattr(self, "_on_" + compiled.kind)
        for role, matcher in enumerate(compiled.matchers):
            entry = (compiled, role, matcher, handler)
            if matcher.types is None:
                self.any_type.append(entry)
                for entries in self.by_type.values():  # rules on any type see every event
                    entries.append(entry)
            else:
                for t in matcher.types:
                    self.by_type.setdefault(t, list(self.any_type)).append(entry)

    # -- state helpers -----------------------------------------------------------------------------
    def _profile(self, pid: str) -> dict:
        """The profile's state, writable (copied on the first write of a batch)."""
        current = self.moments.get(pid)
        if current is not None and self.moments.is_pending(pid):
            return current
        state = {} if current is None else {k: (dict(v) if isinstance(v, dict) else list(v))
                                            for k, v in current.items()}
        for name in ("seq", "cnt", "abs", "mis"):
            if name in state:
                state[name] = {r: (dict(v) if isinstance(v, dict) else list(v))
                               for r, v in state[name].items()}
        self.moments.set(pid, state)
        return state

    # -- events ------------------------------------------------------------------------------------
    def on_event(self, tp: dict) -> list[Candidate]:
        """Evaluate the rules for one stitched, on-time event of a known profile."""
        pid = tp["profile_id"]
        kind = tp["type"]
        t = tp["event_time"]
        self._note_profile(pid, tp, kind, t)
        entries = self.by_type.get(kind, self.any_type)
        if not entries:
            return []
        out: list[Candidate] = []
        loc = (self.moments.get(pid) or {}).get("loc") if self.uses_location else None
        for compiled, role, matcher, handler in entries:
            bound = matcher(tp, loc)
            if bound is not None:
                handler(compiled, role, pid, tp, bound, out)
        return out

    def _note_profile(self, pid: str, tp: dict, kind: str, t: int) -> None:
        if self.uses_location:
            ctx = tp.get("context")
            if isinstance(ctx, dict):
                lat, lon = ctx.get("lat"), ctx.get("lon")
                if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
                    current = (self.moments.get(pid) or {}).get("loc")
                    if current is None or (t >= current[2]
                                           and (current[0], current[1]) != (lat, lon)):
                        self._profile(pid)["loc"] = [lat, lon, t]
        if self.interest_ms and kind in INTEREST_TYPES:
            product = (tp.get("properties") or {}).get("product_id")
            if isinstance(product, str) and product:
                state = self._profile(pid)
                items = state.get("int") or []
                items = [x for x in items if x[0] > t - self.interest_ms] + [[t, product]]
                state["int"] = items[-MAX_ENTRIES:]

    def _on_event(self, c: _Compiled, role: int, pid: str, tp: dict, bound: dict,
                  out: list) -> None:
        self._emit(c, pid, tp["event_time"], tp, [tp["event_id"]],
                   f"{tp['event_time']}:{tp['event_id']}", bound, out)

    def _recent(self, pid: str, section: str, c: _Compiled, t: int,
                within_ms: int) -> tuple[dict, list]:
        """(the section of the profile's writable state, this rule's entries still within reach
        of an event at `t`: the window plus the lateness, and any later ones)."""
        holder = self._profile(pid).setdefault(section, {})
        horizon = t - within_ms - self.pack.lateness_ms
        return holder, [x for x in holder.get(c.rule.id, ()) if x[0] >= horizon]

    def _emit_match(self, c: _Compiled, pid: str, match: list, bindings_at: int, out: list) -> None:
        """A sequence or count completed by the events of `match` (in time order): the moment
        happened at its last event, and its window is its first and last events."""
        first, last = match[0], match[-1]
        self._emit(c, pid, last[0], None, [m[1] for m in match],
                   f"{first[0]}:{first[1]}-{last[0]}:{last[1]}", chain_bindings(match, bindings_at),
                   out, event_id=last[1])

    def _on_sequence(self, c: _Compiled, role: int, pid: str, tp: dict, bound: dict,
                     out: list) -> None:
        pattern: SequencePattern = c.rule.pattern
        t, eid = tp["event_time"], tp["event_id"]
        seq, items = self._recent(pid, "seq", c, t, pattern.within_ms)
        # an event may match several steps: all are recorded when its first matching step comes up
        loc = self.moments.get(pid).get("loc")
        steps = [j for j, m in enumerate(c.matchers) if j == role or m(tp, loc) is not None]
        if role != min(steps) or any(x[1] == eid for x in items):  # done, or delivered twice
            return
        key, b = _same_key(c.same, tp), self._bindings(tp, bound)
        items.extend([t, eid, j, key, b] for j in steps)
        items.sort(key=lambda x: (x[0], x[1], x[2]))
        items = items[-MAX_ENTRIES:]
        for j in steps:
            match = sequence_match(items, len(c.matchers), j, eid, key, pattern.within_ms)
            if match is not None:
                used = {m[1] for m in match}  # consumed: one sequence fires once
                items = [x for x in items if x[1] not in used]
                self._emit_match(c, pid, match, 4, out)
                break
        seq[c.rule.id] = items

    def _on_count(self, c: _Compiled, role: int, pid: str, tp: dict, bound: dict,
                  out: list) -> None:
        pattern: CountPattern = c.rule.pattern
        t, eid = tp["event_time"], tp["event_id"]
        cnt, items = self._recent(pid, "cnt", c, t, pattern.within_ms)
        if any(x[1] == eid for x in items):  # delivered twice
            return
        key = _same_key(c.same, tp)
        items.append([t, eid, key, self._bindings(tp, bound)])
        items.sort(key=lambda x: (x[0], x[1]))
        match = count_match([x for x in items if x[2] == key], eid, pattern.at_least,
                             pattern.within_ms)
        if match is not None:
            used = {m[1] for m in match}  # consumed: the next count starts afresh
            items = [x for x in items if x[1] not in used]
            self._emit_match(c, pid, match, 3, out)
        cnt[c.rule.id] = items[-MAX_ENTRIES:]

    def _on_absence(self, c: _Compiled, role: int, pid: str, tp: dict, bound: dict,
                    out: list) -> None:
        pattern: AbsencePattern = c.rule.pattern
        t, eid = tp["event_time"], tp["event_id"]
        key = _same_key(c.same, tp)
        state = self._profile(pid)
        rid = c.rule.id
        if role == 1:  # a "missing" event: cancels a pending absence it falls inside
            mis, items = self._recent(pid, "mis", c, t, pattern.within_ms)
            mis[rid] = (items + [[t, key]])[-MAX_ENTRIES:]
            pending = state.get("abs", {}).get(rid, {})
            anchor = pending.get(key)
            if anchor is not None and anchor[0] <= t <= anchor[0] + pattern.within_ms:
                self.timers.delete(anchor[2])
                pending = dict(pending)
                del pending[key]
                state["abs"][rid] = pending
            return
        # an anchor ("after" event)
        if any(x[1] == key and t <= x[0] <= t + pattern.within_ms
               for x in state.get("mis", {}).get(rid, ())):
            return  # the missing event already arrived (out of order): no absence
        absences = state.setdefault("abs", {})
        pending = dict(absences.get(rid, {}))
        current = pending.get(key)
        if current is not None:
            if (current[0], current[1]) >= (t, eid):
                return  # a newer anchor already waits: "left" counts from the last one
            self.timers.delete(current[2])
        deadline = t + pattern.within_ms
        tkey = absence_timer_key(deadline, pid, rid, key)
        self.timers.add(tkey, {"k": "absence", "at": deadline, "p": pid, "r": rid, "s": key,
                                   "t": t, "e": eid, "b": self._bindings(tp, bound)})
        pending[key] = [t, eid, tkey]
        absences[rid] = pending

    def on_absence_timer(self, value: dict) -> list[Candidate]:
        """An absence timer fired (the watermark passed its deadline): the moment happened."""
        compiled = self.rules.get(value["r"])
        pid = value["p"]
        if compiled is None:  # the rule was removed from the pack since the timer was set
            return []
        state = self._profile(pid)
        pending = state.get("abs", {}).get(value["r"], {})
        if value["s"] in pending:
            pending = dict(pending)
            del pending[value["s"]]
            state["abs"][value["r"]] = pending
        out: list[Candidate] = []
        self._emit(compiled, pid, value["at"], None, [value["e"]],
                   f"{value['t']}:{value['e']}+{compiled.rule.pattern.within_ms}", value["b"], out,
                   event_id=value["e"])
        return out

    # -- candidates --------------------------------------------------------------------------------
    @staticmethod
    def _bindings(tp: dict, bound: dict) -> dict:
        props = tp.get("properties") or {}
        ctx = tp.get("context") or {}
        b = {"event_id": tp["event_id"]}
        product = props.get("product_id")
        if isinstance(product, str):
            b["product_id"] = product
        store = bound.get("store_id") or ctx.get("store_id")
        if isinstance(store, str):
            b["store_id"] = store
        if isinstance(ctx.get("tz"), str):
            b["tz"] = ctx["tz"]
        return b

    def _emit(self, c: _Compiled, pid: str, at: int, tp: dict | None, matched: list, window: str,
              bound: dict, out: list, event_id: str | None = None) -> None:
        rule = c.rule
        b = dict(bound) if tp is None else self._bindings(tp, bound)
        if rule.profile is not None and not self._profile_ok(rule, pid, at, b.get("product_id")):
            return
        names = self.trait_names.get(rule.id)
        if names:  # kept in the bindings: a deferred trigger shows what it was made with
            values = self.traits_of(pid)
            b.update((TRAIT_PLACEHOLDER + name, placeholder_text(values, name)) for name in names)
        out.append(candidate_for(rule, pid, trigger_id(rule.id, pid, window), at,
                                 event_id or (tp["event_id"] if tp else matched[-1]),
                                 list(matched), b))

    def _profile_ok(self, rule: Rule, pid: str, at: int, product: str | None) -> bool:
        cond = rule.profile
        if cond.identified is not None:
            known = any(key.partition(":")[0] in IDENTIFIED_TYPES
                        for key in self.identifiers_of(pid))
            if known != cond.identified:
                return False
        if cond.audiences or cond.trait is not None:
            values = self.traits_of(pid)
            if not set(cond.audiences) <= set(values.get("audiences", ())):
                return False
            if cond.trait is not None and not self.trait_tests[rule.id](values, {}, at):
                return False
        if cond.min_interest > 0:
            since = at - cond.interest_window_ms
            views = [x for x in (self.moments.get(pid) or {}).get("int", ())
                     if since <= x[0] <= at and (product is None or x[1] == product)]
            if len(views) < cond.min_interest:
                return False
        return True
