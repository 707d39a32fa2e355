"""The pipeline: stages over a batch of touchpoints (`IngestedTouchpoint`), in event-time order.

Pure: no Faust, no Kafka. The Faust `journey` agent and `parcours replay` both call
`Pipeline.process(batch)`; state lives in the mappings passed in (dicts for replay, Faust tables in
the worker) and is written once per key per batch.

Order (streams/eventtime/watermark.py): an arriving event moves its source partition's mark and is
held (`streams/eventtime/reorder.py`) until the frontier, the slowest partition's mark, has passed
it. Held events are processed in (event time, event id) order, and each timer (absence, deferred
trigger, credit, journey closing) fires at its place in that order: before the first event later
than its deadline plus the allowed lateness. So when every input partition is in time order, the
outputs are the same for any interleaving of the partitions, any batching and any restart: the
stream gives what `parcours replay` gives. An event older than the clock (out of order within its
partition) is processed where it arrives; one behind the watermark is late as well. An input record
delivered twice (same source and offset) is applied once.

Per event: identity resolves the profile (and may merge profiles); every merge is passed to each
stage so state kept under an absorbed profile moves to the survivor before the event is seen; then
each stage sees the stitched event (`StitchedTouchpoint`): attribution, then moments (rules and the
preferences gate). What a batch produces is `Emitted`: a list per output, each item typed next to
the code that builds it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, MutableMapping, Protocol, TypedDict

from streams.attribution.config import AttributionConfig
from streams.attribution.models import CreditRow
from streams.attribution.paths import PathRecord, is_touch
from streams.attribution.stage import AttributionStage
from streams.eventtime.timers import Timers
from streams.experiments.exposures import ExposureRow
from streams.identity.graph import IdentityConfig
from streams.ingest.touchpoint import StitchedTouchpoint
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.moments.stage import MomentsStage, References
from streams.preferences.gate import Suppression, Trigger
from streams.sequencing import Sequencing
from streams.state import BatchState
from streams.traits.audiences import AudienceBook
from streams.traits.records import AudienceRecord, TraitsRow
from streams.traits.stage import TRAITS_TIMERS, TraitsStage

# "clock" (the watermark's marks and the input positions) is the last store the worker writes
STORES = ("ids", "profiles", "paths", "traits", "moments", "prefs", "timers", "pending", "clock")
ATTRIBUTION_TIMERS = frozenset({"path", "credit"})


class IdentityEvent(TypedDict):
    """What identity did (`identity` topic): profiles merged, an identifier refused, a profile
    erased."""

    kind: str  # "merge", "refused" or "forget"
    survivor: str  # the profile that lives on (merge), kept (refused), erased (forget; "" if none)
    absorbed: list[str]  # the profiles merged into the survivor; [] for the other kinds
    identifiers: list[str]  # "type:value": the survivor's after a merge, the one refused, or erased
    event_id: str | None  # the event that caused it; the erasure request's id (may be None)
    reason: str | None  # None for a merge
    at: int  # epoch ms: the event's time; the wall clock for forget


class IdentityMapRow(TypedDict):
    """An identifier's current profile (the ClickHouse table identity_map, a ReplacingMergeTree)."""

    identifier_type: str
    identifier: str  # email and phone hashed
    profile_id: str  # "" once deleted
    updated_at: int  # the version: strictly increasing within the process
    is_deleted: int  # 1 when no profile holds the identifier any more (erasure)


class LateEvent(TypedDict):
    """An event behind the watermark (`touchpoints.late`): processed, but moment rules skipped."""

    event_id: str
    event_time: int
    type: str
    source: str  # its input partition
    watermark: int  # epoch ms, when it arrived
    reason: str  # readable; attribution appends why a touch was not credited


@dataclass
class Emitted:
    """What one batch produces. Every list holds plain dicts ready for a topic or a table."""

    stitched: list[StitchedTouchpoint] = field(default_factory=list)
    identity: list[IdentityEvent] = field(default_factory=list)  # merge / refused / forget
    identity_map: list[IdentityMapRow] = field(default_factory=list)  # identifier -> profile now
    credits: list[CreditRow] = field(default_factory=list)
    triggers: list[Trigger] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    late: list[LateEvent] = field(default_factory=list)  # behind the watermark: rules skipped
    paths: list[PathRecord] = field(default_factory=list)  # closed paths, for data-driven models
    exposures: list[ExposureRow] = field(default_factory=list)  # experiment entries, conversions
    traits: list[TraitsRow] = field(default_factory=list)  # profiles changed: their traits now
    audiences: list[AudienceRecord] = field(default_factory=list)  # audience entries and exits

    def extend(self, other: "Emitted") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def counts(self) -> dict:
        return {name: len(getattr(self, name)) for name in self.__dataclass_fields__}


class Stage(Protocol):
    """A per-profile stage. State must be kept under profile ids so merges can re-key it, and a
    profile's whole state (its timers included) can leave one shard and join another:
    `export(profile_id)` returns it as plain JSON data (None when the stage holds nothing of the
    profile) and removes it; `adopt(profile_id, state)` puts an exported state back under the
    same id, after which `on_merge` folds it into the survivor as if it had always been there."""

    name: str  # the key of this stage's part of a transfer (streams/shards)

    def on_event(self, tp: StitchedTouchpoint, out: Emitted) -> None: ...

    def on_merge(self, survivor: str, absorbed: list, out: Emitted) -> None: ...

    def on_forget(self, profile_id: str, out: Emitted) -> None: ...

    def export(self, profile_id: str) -> Any: ...

    def adopt(self, profile_id: str, state: Any) -> None: ...


class Pipeline(Sequencing):
    """The whole journey in one process: event time and identity (`Sequencing`), then each
    per-profile stage, in the stitch order."""

    def __init__(
        self,
        stores: dict[str, MutableMapping] | None = None,
        *,
        identity_config: IdentityConfig | None = None,
        attribution_config: AttributionConfig | None = None,
        rules: RulePack | None = None,
        references: References | None = None,
        sources: int = 0,
        clock: Callable[[], float] = time.time,
    ):
        stores = stores if stores is not None else {}
        states = {name: BatchState(stores.setdefault(name, {})) for name in STORES}
        rules = rules if rules is not None else load_default()
        super().__init__(states, identity_config=identity_config, lateness_ms=rules.lateness_ms,
                         sources=sources, clock=clock)
        self.timers = Timers(self.states["timers"])
        references = references if references is not None else References.of(rules)
        attribution_config = attribution_config or AttributionConfig()
        self.attribution = AttributionStage(self.states["paths"], attribution_config, self.timers)
        self.traits = traits_stage(rules, self.states["traits"], self.timers, references,
                                   attribution_config, self.identity.identifiers_of,
                                   lambda pid: self.moments.gate.consent(pid))
        self.moments = MomentsStage(rules, self.states["moments"], self.states["prefs"],
                                    self.timers, references,
                                    identifiers_of=self.identity.identifiers_of,
                                    traits_of=self.traits.current)
        self.stages: list[Stage] = [self.attribution, self.traits, self.moments]

    def _new_out(self) -> Emitted:
        return Emitted()

    def _late(self, tp: dict, record: dict, out: Emitted) -> None:
        self.moments.skip(tp)
        out.late.append(record)

    def _passed(self, threshold: int, out: Emitted) -> None:
        if self.timers.earliest() < threshold:
            self._fire_due(threshold, out)

    def _fire_due(self, watermark: int, out: Emitted) -> None:
        for key, value in self.timers.due(watermark):
            kind = value["k"]
            if kind in ATTRIBUTION_TIMERS:
                self.attribution.on_timer(value, out)
            elif kind in TRAITS_TIMERS:
                self.traits.on_timer(key, value, out)
            else:
                self.moments.on_timer(key, value, out)

    def _apply(self, tp: dict, out: Emitted, changed: dict, threshold: int) -> None:
        """One event at its firing point: the timers due before it, identity, every stage, then
        any timer the event set that is due already (a late conversion's credit)."""
        if self.timers.earliest() < threshold:
            self._fire_due(threshold, out)
        res = self._resolve(tp, out, changed)
        if res is not None:
            for merge in res.merges:
                for stage in self.stages:
                    stage.on_merge(merge.survivor, merge.absorbed, out)
            profile_id = res.profile_id or ""
        else:
            profile_id = ""
        tp["profile_id"] = profile_id
        out.stitched.append(tp)
        for stage in self.stages:
            stage.on_event(tp, out)
        if self.timers.earliest() < threshold:  # a timer it set behind the watermark: now
            self._fire_due(threshold, out)

    def _erase(self, profile_id: str, identifiers: list[str], request_id: str | None,
               out: Emitted) -> None:
        for stage in self.stages:
            stage.on_forget(profile_id, out)

    def _done(self, out: Emitted, changed: dict, flush: bool) -> Emitted:
        self.traits.rows(out)  # one row per profile the batch changed
        return super()._done(out, changed, flush)

    def reset_caches(self) -> None:
        super().reset_caches()
        self.timers.reset()
        self.traits.reset()


def traits_stage(rules: RulePack, state: BatchState, timers: Timers, references,
                 attribution_config: AttributionConfig, identifiers_of, consent_of) -> TraitsStage:
    """The traits stage of a pack (`Pipeline` and `streams.shards.ShardCore` build it alike)."""
    return TraitsStage(state, rules.traits, AudienceBook(rules.audiences, references), timers,
                       is_touch=lambda tp: is_touch(tp, attribution_config),
                       identifiers_of=identifiers_of, consent_of=consent_of)
