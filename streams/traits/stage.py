"""The traits stage of the pipeline: computed and declared traits per profile, and audiences.

Per accepted event of a known profile (`on_event`, late ones too: a trait is a fact about the
person, not a moment), the profile's state takes the event (`streams.traits.profile`), then is
*settled* as of its time: the windows are pruned, the traits derived, the lifecycle history
noted, the audiences evaluated (each change one `audience_entered` / `audience_exited` record)
and the profile's one "traits" timer set to the next time something can change without an event
(a lapse, an RFM recency cut, a touch or a counted event leaving its window, a `within` test).
When the watermark passes that time the pipeline hands the timer back (`on_timer`) and the
profile is settled as of it. So traits and memberships are event-time facts: the stream and
`parcours replay` give the same, whatever the batching.

Merges fold the absorbed record into the survivor's (`profile.merge_states`): the absorbed
profile leaves its audiences (cause "merge") and its row is deleted; the survivor is settled.
Erasure drops the record (its audiences exited, cause "forget", for activation systems; its
ClickHouse rows are deleted by `sinks.erasure`). A profile's `profile_traits` row is written once
per batch that changed it (`rows`), at the version of its last change.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from streams.eventtime.timers import Timers, timer_key
from streams.state import BatchState
from streams.traits.audiences import COUNTED, KNOWN, AudienceBook
from streams.traits.model import TraitsConfig
from streams.traits.profile import (
    IDENTIFIED_TYPES,
    NEW,
    OLDEST_TOUCH,
    PURCHASE,
    apply_event,
    derive,
    merge_states,
    next_change,
    note_lifecycle,
    prune,
)
from streams.traits.records import deleted_row, traits_row, transition

if TYPE_CHECKING:
    from streams.ingest.touchpoint import StitchedTouchpoint
    from streams.pipeline import Emitted

__all__ = ["TRAITS_TIMERS", "TraitsStage"]

TRAITS_TIMERS = frozenset({"traits"})


class TraitsStage:
    name = "traits"

    def __init__(self, state: BatchState, config: TraitsConfig, audiences: AudienceBook,
                 timers: Timers, *, is_touch: Callable[[dict], bool],
                 identifiers_of: Callable[[str], list],
                 consent_of: Callable[[str], dict] | None = None):
        self.state = state
        self.config = config
        self.audiences = audiences
        self.timers = timers
        self.is_touch = is_touch
        self.identifiers_of = identifiers_of
        self.consent_of = consent_of or (lambda _pid: {})
        self._dirty: set[str] = set()
        # what an event must change to settle the profile (else only its record is touched):
        # the lifecycle, a deadline, or an input of an audience
        self._reads = frozenset(audiences.reads)  # what settling derives
        # the top channel's window moves a profile's timer only when an audience tests it: a
        # row's top_channel is the one as of the row's `as_of`
        self._touch_timers = "top_channel" in self._reads
        self._settle_on = frozenset({NEW, PURCHASE, KNOWN, COUNTED, *audiences.inputs,
                                     *((OLDEST_TOUCH,) if self._touch_timers else ())})

    def _own(self, pid: str) -> dict:
        """The profile's state, writable (copied on its first write of a batch)."""
        current = self.state.get(pid)
        if current is not None and self.state.is_pending(pid):
            return current
        st = {} if current is None else dict(current)
        self.state.set(pid, st)
        return st

    def _known(self, pid: str) -> bool:
        return any(key.partition(":")[0] in IDENTIFIED_TYPES for key in self.identifiers_of(pid))

    # -- events and timers -------------------------------------------------------------------
    def on_event(self, tp: StitchedTouchpoint, out: Emitted) -> None:
        pid = tp["profile_id"]
        if not pid:
            return
        st = self._own(pid)
        changed = apply_event(st, tp, self.config, self.is_touch(tp))
        if self.audiences.counters and self.audiences.observe(st, tp):
            changed.add(COUNTED)
        ids = tp.get("ids")
        if ids and not st.get("k") and not IDENTIFIED_TYPES.isdisjoint(ids) and self._known(pid):
            changed.add(KNOWN)
        t = tp["event_time"]
        as_of = max(st.get("at", t), t)
        deadline = st.get("td")
        if not self._settle_on.isdisjoint(changed) or (deadline is not None and as_of >= deadline):
            self._settle(pid, st, as_of, out, tp["event_id"], "event",
                         st.get("k") or KNOWN in changed)
        else:  # nothing an audience, the lifecycle or a deadline reads: the row only
            st["at"] = as_of
            st["v"] = st.get("v", 0) + 1
            self._dirty.add(pid)

    def on_timer(self, key: str, value: dict, out: Emitted) -> None:
        pid = value["p"]
        current = self.state.get(pid)
        if current is None or current.get("tk") != key:
            return  # the profile went, or moved its timer
        st = self._own(pid)
        del st["tk"], st["td"]  # fired: `due` removed it
        self._settle(pid, st, max(st["at"], value["at"]), out, None, "time")

    def _settle(self, pid: str, st: dict, as_of: int, out: Emitted, event_id: str | None,
                cause: str, known: bool | None = None) -> None:
        st["at"] = as_of
        windows = self.audiences.windows
        prune(st, as_of, self.config, windows)
        if known is None:
            known = st.get("k") or self._known(pid)  # once known, known
        st["k"] = known
        values = derive(st, known, as_of, self.config, self._reads)
        note_lifecycle(st, values["lifecycle"], as_of)
        now = self.audiences.members(values, st, as_of)
        before = st.get("a") or []
        if now != before:
            for audience in before:
                if audience not in now:
                    out.audiences.append(transition(pid, st, audience, False, as_of, event_id,
                                                    cause))
            for audience in now:
                if audience not in before:
                    out.audiences.append(transition(pid, st, audience, True, as_of, event_id,
                                                    cause))
            st["a"] = now
        st["v"] = st.get("v", 0) + 1
        later = [t for t in (next_change(st, as_of, self.config, windows, self._touch_timers),
                             *self.audiences.deadlines(values, as_of)) if t is not None]
        self._set_timer(pid, st, min(later) if later else None)
        self._dirty.add(pid)

    def _set_timer(self, pid: str, st: dict, deadline: int | None) -> None:
        key = timer_key(deadline, pid, "traits") if deadline is not None else None
        old = st.get("tk")
        if old == key:
            return
        if old is not None:
            self.timers.delete(old)
        if key is None:
            del st["tk"], st["td"]
        else:
            self.timers.add(key, {"k": "traits", "at": deadline, "p": pid})
            st["tk"], st["td"] = key, deadline

    # -- merges, erasure, hand-offs --------------------------------------------------------------
    def on_merge(self, survivor: str, absorbed: list, out: Emitted) -> None:
        merged = None
        for pid in absorbed:
            other = self.state.get(pid)
            if other is None:
                continue
            other = dict(other)
            self._leave(pid, other, out, "merge")
            out.traits.append(deleted_row(pid, other))
            merged = merge_states(merged if merged is not None else self._own(survivor), other)
        if merged is not None:
            self.state.set(survivor, merged)
            self._settle(survivor, merged, merged["at"], out, None, "merge")

    def _leave(self, pid: str, st: dict, out: Emitted, cause: str) -> None:
        """`pid` is gone (merged or erased): it leaves its audiences; its record and timer go."""
        for audience in st.get("a") or ():
            out.audiences.append(transition(pid, st, audience, False, st["at"], None, cause))
        if st.get("tk"):
            self.timers.delete(st["tk"])
        self.state.delete(pid)
        self._dirty.discard(pid)

    def on_forget(self, profile_id: str, out: Emitted) -> None:
        st = self.state.get(profile_id)
        if st is not None:
            self._leave(profile_id, dict(st), out, "forget")
        if any(row["profile_id"] == profile_id for row in out.traits):  # written before, in
            out.traits[:] = [row for row in out.traits  # this batch: the erasure goes before
                             if row["profile_id"] != profile_id]  # the batch's traits rows

    def export(self, profile_id: str) -> dict | None:
        st = self.state.get(profile_id)
        if st is None:
            return None
        timer = self.timers.get(st["tk"]) if st.get("tk") else None
        if timer is not None:
            self.timers.delete(st["tk"])
        self.state.delete(profile_id)
        self._dirty.discard(profile_id)
        return {"state": st, "timer": timer}

    def adopt(self, profile_id: str, exported: dict | None) -> None:
        if exported is None:
            return
        st = exported["state"]
        self.state.set(profile_id, st)
        if exported["timer"] is not None:
            self.timers.add(st["tk"], exported["timer"])

    # -- reading -----------------------------------------------------------------------------------
    def current(self, pid: str) -> dict:
        """The profile's traits now, by name (times in epoch ms), with `audiences`: what rules
        test. {} for a profile with no record."""
        st = self.state.get(pid)
        if st is None:
            return {}
        values = derive(st, self._known(pid), st["at"], self.config)
        values["audiences"] = list(st.get("a") or ())
        return values

    def rows(self, out: Emitted) -> None:
        """The `profile_traits` row of every profile changed since the last call."""
        for pid in sorted(self._dirty):
            st = self.state.get(pid)
            if st is not None:
                values = derive(st, st["k"] if "k" in st else self._known(pid), st["at"],
                                self.config)
                out.traits.append(traits_row(pid, st, values, self.consent_of(pid)))
        self._dirty.clear()

    def reset(self) -> None:
        """Forget what this process noted (a discarded batch, a recovery)."""
        self._dirty.clear()
