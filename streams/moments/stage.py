"""The moments stage of the pipeline: watermark, moment engine and preferences gate together.

Per event, in this order (the pipeline calls `on_time` before identity, `on_event` after):
1. `on_time`: the event's source partition moves the watermark; timers the watermark has passed
   fire first (absences that happened, deferred triggers whose quiet hours ended), so a batch
   boundary never changes an outcome. A late event is reported and skips the moment rules.
2. `on_event`: the gate records consent, time zone and engagement; the engine evaluates the rules;
   every candidate goes through the gate: a trigger, a suppression with its reason, or a deferral.
"""
from __future__ import annotations

from datetime import datetime, timezone

from streams.moments.candidate import Candidate
from streams.moments.engine import MomentEngine
from streams.moments.feeds import NOT_A_SOURCE
from streams.moments.gate import GateConfig, PreferenceGate
from streams.moments.rules import RulePack
from streams.moments.watermark import Watermark
from streams.state import BatchState


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


class References:
    """The reference data a rule pack names: its store list and inventory (either may be None)."""

    def __init__(self, stores=None, inventory=None):
        self.stores = stores
        self.inventory = inventory

    @classmethod
    def of(cls, pack: RulePack) -> "References":
        from streams.moments.reference import Inventory, Stores

        return cls(Stores.load(pack.stores_file) if pack.stores_file else None,
                   Inventory.load(pack.inventory_file) if pack.inventory_file else None)


class MomentsStage:
    def __init__(self, pack: RulePack, moments: BatchState, prefs: BatchState, timers: BatchState,
                 refs, identifiers_of=None, sources=()):
        self.pack = pack
        self.references = refs
        self.watermark = Watermark(timers, pack.lateness_ms, sources)
        self.engine = MomentEngine(pack, moments, timers, refs, identifiers_of)
        self.gate = PreferenceGate(prefs, GateConfig.from_dict(pack.preferences))
        self._late_tp = None  # the event `on_time` found late: `on_event` skips its rules

    def set_sources(self, partitions: int) -> None:
        """The input has `partitions` partitions: each one holds the watermark back until it reports."""
        self.watermark.sources = tuple(str(i) for i in range(partitions))
        self.watermark.reset()

    def mark_idle(self, source: str, out) -> None:
        """The worker found input partition `source` fully consumed: stop waiting for it."""
        before = self.watermark.value
        self.watermark.mark_idle(str(source))
        if self.watermark.value > before:
            self.fire_due(out)

    def reset(self) -> None:
        """After the backing stores were recovered: drop the caches built over them."""
        self.watermark.reset()
        self.engine.reset()

    def on_time(self, tp: dict, source, out) -> None:
        if source == NOT_A_SOURCE:  # a preference record: not part of the stream's event time
            return
        t = tp["event_time"]
        wm_before = self.watermark.value
        if self.watermark.observe("" if source is None else str(source), t):
            self._late_tp = tp
            out.late.append({
                "event_id": tp["event_id"], "event_time": t, "type": tp["type"],
                "source": "" if source is None else str(source), "watermark": wm_before,
                "reason": (f"event time {_iso(t)} is {(wm_before - t) / 1000:.1f} s behind the "
                           f"watermark {_iso(wm_before)} (allowed lateness "
                           f"{self.pack.lateness_ms / 1000:.0f} s): moment rules skipped"),
            })
            return
        if self.watermark.value > wm_before:
            self.fire_due(out)

    def fire_due(self, out) -> None:
        for key, value in self.engine.due(self.watermark.value):
            if value["k"] == "absence":
                for cand in self.engine.on_absence_timer(value):
                    self._submit(cand, out)
            else:
                cand = self.engine.released(key, value)
                if cand is not None:
                    self._submit(cand, out, released=True)

    def on_event(self, tp: dict, out) -> None:
        if not tp["profile_id"]:
            return
        self.gate.observe(tp)
        if self._late_tp is tp:
            self._late_tp = None
            return
        for cand in self.engine.on_event(tp):
            self._submit(cand, out)

    def _submit(self, cand: Candidate, out, released: bool = False) -> None:
        decision = self.gate.decide(cand, released=released)
        if decision.trigger is not None:
            out.triggers.append(decision.trigger)
        if decision.suppression is not None:
            out.suppressions.append(decision.suppression)
        if decision.defer_until is not None:
            self.engine.defer(cand, decision.defer_until)

    def on_merge(self, survivor: str, absorbed: list) -> None:
        self.engine.on_merge(survivor, absorbed)
        self.gate.on_merge(survivor, absorbed)

    def on_forget(self, profile_id: str) -> None:
        self.engine.on_forget(profile_id)
        self.gate.on_forget(profile_id)
