"""The moments stage of the pipeline: the moment engine and the preferences gate together.

The pipeline owns event time (watermark, timers): it hands this stage the timers that fired
(`on_timer`: absences that happened, deferred triggers whose quiet hours ended) and tells it which
events are late (`skip`). Per event, `on_event`: the gate records consent, time zone and
engagement; the engine evaluates the rules; every candidate goes through the gate: a trigger, a
suppression with its reason, or a deferral; a candidate that enters its profile in the rule's
experiment, and an event that converts an entry, give `experiment_exposures` rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from streams.eventtime.timers import Timers
from streams.moments.candidate import Candidate
from streams.moments.engine import MomentEngine
from streams.moments.rules.model import RulePack
from streams.preferences.gate import GateConfig, PreferenceGate
from streams.state import BatchState

if TYPE_CHECKING:
    from streams.ingest.touchpoint import StitchedTouchpoint
    from streams.pipeline import Emitted


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
    name = "moments"

    def __init__(self, pack: RulePack, moments: BatchState, prefs: BatchState, timers: Timers,
                 refs, identifiers_of=None, traits_of=None):
        self.references = refs
        self.engine = MomentEngine(pack, moments, timers, refs, identifiers_of, traits_of)
        self.gate = PreferenceGate(prefs, GateConfig.from_dict(pack.preferences),
                                   {r.experiment.id: r.experiment for r in pack.rules
                                    if r.experiment is not None})
        self._late_tp = None  # the event the pipeline found late: `on_event` skips its rules

    def skip(self, tp: dict) -> None:
        """`tp` is behind the watermark: the gate still records it, the rules do not see it."""
        self._late_tp = tp

    def on_timer(self, key: str, value: dict, out: Emitted) -> None:
        """A timer of this stage fired (the watermark passed it)."""
        if value["k"] == "absence":
            for cand in self.engine.on_absence_timer(value):
                self._submit(cand, out)
        else:
            cand = self.engine.released(key, value)
            if cand is not None:
                self._submit(cand, out, released=True)

    def on_event(self, tp: StitchedTouchpoint, out: Emitted) -> None:
        if not tp["profile_id"]:
            return
        self.gate.observe(tp)
        out.exposures.extend(self.gate.converted(tp))  # a goal counts when late too
        if self._late_tp is tp:
            self._late_tp = None
            return
        for cand in self.engine.on_event(tp):
            self._submit(cand, out)

    def _submit(self, cand: Candidate, out: Emitted, released: bool = False) -> None:
        decision = self.gate.decide(cand, released=released)
        if decision.trigger is not None:
            out.triggers.append(decision.trigger)
        if decision.suppression is not None:
            out.suppressions.append(decision.suppression)
        if decision.defer_until is not None:
            self.engine.defer(cand, decision.defer_until)
        if decision.exposure is not None:
            out.exposures.append(decision.exposure)

    def on_merge(self, survivor: str, absorbed: list, out: Emitted) -> None:
        self.engine.on_merge(survivor, absorbed)
        out.exposures.extend(self.gate.on_merge(survivor, absorbed))

    def on_forget(self, profile_id: str, out: Emitted | None = None) -> None:
        self.engine.on_forget(profile_id)
        self.gate.on_forget(profile_id)

    def export(self, profile_id: str) -> dict | None:
        engine, gate = self.engine.export(profile_id), self.gate.export(profile_id)
        return None if engine is None and gate is None else {"engine": engine, "gate": gate}

    def adopt(self, profile_id: str, state: dict | None) -> None:
        if state is None:
            return
        if state["engine"] is not None:
            self.engine.adopt(profile_id, state["engine"])
        if state["gate"] is not None:
            self.gate.adopt(profile_id, state["gate"])
