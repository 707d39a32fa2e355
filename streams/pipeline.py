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
from datetime import datetime, timezone
from typing import Callable, MutableMapping, Protocol, TypedDict

from streams.attribution.config import AttributionConfig
from streams.attribution.models import CreditRow
from streams.attribution.paths import PathRecord
from streams.attribution.stage import AttributionStage
from streams.eventtime.reorder import ReorderBuffer
from streams.eventtime.timers import Timers
from streams.eventtime.watermark import HOLD, MOVED, SEEN, Watermark
from streams.identity.graph import IdentityConfig, IdentityGraph
from streams.ingest.touchpoint import (
    NOT_A_SOURCE,
    OFFSET,
    SOURCE,
    IngestedTouchpoint,
    StitchedTouchpoint,
)
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.moments.stage import MomentsStage, References
from streams.preferences.gate import Suppression, Trigger
from streams.state import BatchState

# "clock" (the watermark's marks and the input positions) is the last store the worker writes
STORES = ("ids", "profiles", "paths", "moments", "prefs", "timers", "pending", "clock")
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

    def extend(self, other: "Emitted") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def counts(self) -> dict:
        return {name: len(getattr(self, name)) for name in self.__dataclass_fields__}


class Stage(Protocol):
    """A per-profile stage. State must be kept under profile ids so merges can re-key it."""

    def on_event(self, tp: StitchedTouchpoint, out: Emitted) -> None: ...

    def on_merge(self, survivor: str, absorbed: list) -> None: ...

    def on_forget(self, profile_id: str) -> None: ...


class Pipeline:
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
        self.states = {name: BatchState(stores.setdefault(name, {})) for name in STORES}
        self.identity = IdentityGraph(self.states["ids"], self.states["profiles"],
                                      identity_config or IdentityConfig())
        rules = rules if rules is not None else load_default()
        self.watermark = Watermark(self.states["clock"], rules.lateness_ms,
                                   [str(i) for i in range(sources)])
        self.timers = Timers(self.states["timers"])
        self.buffer = ReorderBuffer(self.states["pending"])
        self.redelivered = 0  # input records skipped because they were applied before
        self.moments = MomentsStage(rules, self.states["moments"], self.states["prefs"],
                                    self.timers,
                                    references if references is not None else References.of(rules),
                                    identifiers_of=self.identity.identifiers_of)
        self.attribution = AttributionStage(self.states["paths"],
                                            attribution_config or AttributionConfig(), self.timers)
        self.stages: list[Stage] = [self.attribution, self.moments]
        self._clock = clock
        self._last_ms = 0

    def _now_ms(self) -> int:
        # a version column for ReplacingMergeTree: strictly increasing within this process
        now = int(self._clock() * 1000)
        self._last_ms = now if now > self._last_ms else self._last_ms + 1
        return self._last_ms

    def process(self, batch: list[IngestedTouchpoint], *, flush: bool = True) -> Emitted:
        """Run every stage over `batch`. With flush=False the state changes stay pending until
        `flush()`: the worker first makes the batch's outputs durable, then advances its state, so a
        crash in between replays the batch instead of losing its outputs."""
        out = Emitted()
        changed: dict[str, str | None] = {}
        for tp in batch:
            self._arrive(tp, out, changed)
        return self._done(out, changed, flush)

    def _done(self, out: Emitted, changed: dict, flush: bool) -> Emitted:
        if changed:
            now = self._now_ms()
            for key, profile_id in changed.items():
                kind, _, value = key.partition(":")
                out.identity_map.append({
                    "identifier_type": kind, "identifier": value, "profile_id": profile_id or "",
                    "updated_at": now, "is_deleted": 0 if profile_id else 1,
                })
        if flush:
            self.flush()
        return out

    # -- event time --------------------------------------------------------------------------------
    def _arrive(self, tp: IngestedTouchpoint, out: Emitted, changed: dict) -> None:
        """An event comes in: held until the frontier passes it, or (older than the clock: events
        newer than it were processed already) processed at once, late when behind the watermark."""
        source = tp.pop(SOURCE, None)
        offset = tp.pop(OFFSET, None)
        if source == NOT_A_SOURCE:  # a preference record: not part of the stream's event time
            self._apply(tp, out, changed)
            return
        source = "" if source is None else str(source)
        watermark = self.watermark
        t = tp["event_time"]
        flags = watermark.arrive(source, offset, t)
        if flags == SEEN:
            self.redelivered += 1  # this input record was applied before (re-read after a restart)
            return
        if flags & HOLD:
            self.buffer.add(tp, source, offset)
        else:
            before = watermark.value
            if t < before:
                self.moments.skip(tp)
                out.late.append({
                    "event_id": tp["event_id"], "event_time": t, "type": tp["type"],
                    "source": source, "watermark": before,
                    "reason": (f"event time {_iso(t)} is {(before - t) / 1000:.1f} s behind the "
                               f"watermark {_iso(before)} (allowed lateness "
                               f"{watermark.lateness_ms / 1000:.0f} s): moment rules skipped"),
                })
            self._apply(tp, out, changed)
        if flags & MOVED:
            self._release(out, changed)

    def _release(self, out: Emitted, changed: dict) -> None:
        """Process the held events the frontier has passed, in (event time, event id) order; the
        timers the watermark passes fire between them, at their place in time."""
        watermark = self.watermark
        frontier = watermark.frontier()
        if frontier <= watermark.clock:
            return
        lateness = watermark.lateness_ms
        earliest = self.timers.earliest
        apply = self._apply
        for tp in self.buffer.release(frontier):
            due = tp["event_time"] - lateness
            if earliest() < due:
                self._fire_due(due, out)
            apply(tp, out, changed)
        watermark.advance(frontier)
        value = watermark.value
        if earliest() < value:
            self._fire_due(value, out)

    def _fire_due(self, watermark: int, out: Emitted) -> None:
        for key, value in self.timers.due(watermark):
            kind = value["k"]
            if kind in ATTRIBUTION_TIMERS:
                self.attribution.on_timer(value, out)
            else:
                self.moments.on_timer(key, value, out)

    def set_sources(self, partitions: int) -> None:
        """The input has `partitions` partitions: each holds the frontier until it reports."""
        self.watermark.sources = tuple(str(i) for i in range(partitions))
        self.watermark.reset()

    def idle(self, source: str, *, flush: bool = True) -> Emitted:
        """Input partition `source` is idle (all consumed): the frontier stops waiting for it, and
        the events and timers it passes are processed."""
        out = Emitted()
        changed: dict[str, str | None] = {}
        self.watermark.mark_idle(str(source))
        self._release(out, changed)
        return self._done(out, changed, flush)

    def resume(self, source: str) -> None:
        """Input partition `source`, reported idle, has records again (ingest saw its high-water
        mark move): it holds the frontier back again before any newer record of another
        partition is processed."""
        self.watermark.resume(str(source))

    def end_of_input(self, *, flush: bool = True) -> Emitted:
        """Nothing more will come (the end of a replayed file): every partition is idle, so every
        held event is processed; the watermark stays at the newest event minus the lateness, as
        in a stream whose partitions all went idle."""
        out = Emitted()
        changed: dict[str, str | None] = {}
        for source in {*self.watermark.sources, *self.watermark.marks}:
            self.watermark.mark_idle(source)
        self._release(out, changed)
        return self._done(out, changed, flush)

    def _apply(self, tp: dict, out: Emitted, changed: dict) -> None:
        """One event through identity and every stage."""
        ids = tp.get("ids")
        if ids:
            res = self.identity.resolve(ids, tp["event_id"], tp["event_time"])
            for merge in res.merges:
                for stage in self.stages:
                    stage.on_merge(merge.survivor, merge.absorbed)
                out.identity.append(_identity_event(merge, "merge", tp["event_time"]))
            for refusal in res.refused:
                out.identity.append({
                    "kind": "refused", "survivor": refusal.profile_id, "absorbed": [],
                    "identifiers": [refusal.identifier], "event_id": refusal.event_id,
                    "reason": refusal.reason, "at": tp["event_time"],
                })
            for key in res.changed_ids:
                changed[key] = self.identity.profile_of(key)
            profile_id = res.profile_id or ""
        else:
            profile_id = ""
        tp["profile_id"] = profile_id
        out.stitched.append(tp)
        for stage in self.stages:
            stage.on_event(tp, out)

    def forget(self, identifier: str, *, request_id: str | None = None,
               flush: bool = True) -> Emitted:
        """Right to erasure: drop the whole profile holding `identifier` ("type:value", email and
        phone already hashed) from every stage's state. Always emits one `forget` identity event,
        with an empty survivor when no profile holds the identifier."""
        out = Emitted()
        now = self._now_ms()
        gone = self.identity.forget(identifier)
        # the person's held events are erased before they are processed: those carrying one of
        # the profile's identifiers, or the identifier asked for when no profile holds it yet
        # (a held event linked to the person only through another held event is not found)
        keys = set(gone.identifiers) if gone is not None else {identifier}
        self.buffer.drop(lambda tp: not any(f"{k}:{v}" in keys
                                            for k, v in (tp.get("ids") or {}).items()))
        if gone is None:
            out.identity.append({"kind": "forget", "survivor": "", "absorbed": [],
                                 "identifiers": [identifier], "event_id": request_id,
                                 "reason": "no profile holds this identifier", "at": now})
            return out
        for stage in self.stages:
            stage.on_forget(gone.profile_id)
        out.identity.append({
            "kind": "forget", "survivor": gone.profile_id, "absorbed": [],
            "identifiers": list(gone.identifiers), "event_id": request_id,
            "reason": f"erasure requested by {identifier.partition(':')[0]}", "at": now,
        })
        for key in gone.identifiers:
            kind, _, value = key.partition(":")
            out.identity_map.append({"identifier_type": kind, "identifier": value, "profile_id": "",
                                     "updated_at": now, "is_deleted": 1})
        if flush:
            self.flush()
        return out

    def reset_caches(self) -> None:
        """Call after the backing stores were recovered (Faust table recovery)."""
        self.watermark.reset()
        self.timers.reset()
        self.buffer.reset()

    def flush(self) -> int:
        return sum(state.flush() for state in self.states.values())


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def _identity_event(merge, kind: str, at: int) -> IdentityEvent:
    return {"kind": kind, "survivor": merge.survivor, "absorbed": list(merge.absorbed),
            "identifiers": list(merge.identifiers), "event_id": merge.event_id, "reason": None,
            "at": at}
