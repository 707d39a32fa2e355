"""What needs the global view of the stitch order: event time and identity.

`Sequencing` holds the part of the journey that sees every touchpoint: the watermark per source,
the reorder buffer that releases held events in (event time, event id) order, the late decision,
and identity resolution (links, merges, limits, forget). Two classes build on it:

- `streams.pipeline.Pipeline` applies each event to the per-profile stages at once, in one
  process: the reference (`parcours replay`, and the worker with one shard's worth of work);
- `streams.shards.sequencer.Sequencer` turns each event, merge and erasure into an item for the
  shard that holds the profile (`parcours.journey`), for N shard processes.

Timers fire at *firing points*: before and after each event is applied, at the event's
threshold (a released event's time minus the allowed lateness, or the watermark for an event
applied where it arrives), and at the end of each release (the new watermark). A timer fires at
the first firing point whose threshold is past its deadline, in (deadline, key) order; one an
event sets behind the watermark (a late conversion's credit) fires right after that event. The
thresholds never decrease, and after every event no timer is left due before the watermark, so
a profile's timers fire between the same two of its items wherever its items are applied: a
shard that sees only its profiles' items, each with its threshold, fires them as the sequential
run does.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

from streams.eventtime.reorder import ReorderBuffer
from streams.eventtime.watermark import HOLD, MOVED, SEEN, Watermark
from streams.identity.graph import IdentityConfig, IdentityGraph
from streams.ingest.touchpoint import NOT_A_SOURCE, OFFSET, SOURCE, IngestedTouchpoint
from streams.state import BatchState

__all__ = ["Sequencing", "late_record"]


def late_record(tp: dict, source: str, watermark: int, lateness_ms: int) -> dict:
    """The `touchpoints.late` record of an event behind the watermark (`LateEvent`)."""
    t = tp["event_time"]
    return {"event_id": tp["event_id"], "event_time": t, "type": tp["type"], "source": source,
            "watermark": watermark,
            "reason": (f"event time {_iso(t)} is {(watermark - t) / 1000:.1f} s behind the "
                       f"watermark {_iso(watermark)} (allowed lateness "
                       f"{lateness_ms / 1000:.0f} s): moment rules skipped")}


class Sequencing:
    """Event time and identity over the states `ids`, `profiles`, `pending` and `clock`.

    Subclasses say what applying an event means (`_apply`), what a firing point with no event
    after it does (`_passed`), what a late event leaves (`_late`), and what erasing a profile
    does beyond identity (`_erase`). `Emitted`-like outputs (`out`) need `identity`,
    `identity_map` and `late` lists."""

    def __init__(self, states: dict[str, BatchState], *, identity_config: IdentityConfig | None,
                 lateness_ms: int, sources: int, clock: Callable[[], float] = time.time):
        self.states = states
        self.identity = IdentityGraph(states["ids"], states["profiles"],
                                      identity_config or IdentityConfig())
        self.watermark = Watermark(states["clock"], lateness_ms, [str(i) for i in range(sources)])
        self.buffer = ReorderBuffer(states["pending"])
        self.redelivered = 0  # input records skipped because they were applied before
        self._clock = clock
        self._last_ms = 0

    # -- what subclasses define ------------------------------------------------------------------
    def _apply(self, tp: dict, out, changed: dict, threshold: int) -> None:
        raise NotImplementedError

    def _passed(self, threshold: int, out) -> None:
        """A firing point with no event after it: the watermark moved to `threshold`."""
        raise NotImplementedError

    def _late(self, tp: dict, record: dict, out) -> None:
        """`tp`, about to be applied, is behind the watermark (`record`: its late record)."""
        raise NotImplementedError

    def _erase(self, profile_id: str, identifiers: list[str], request_id: str | None,
               out) -> None:
        """Profile `profile_id` (holding `identifiers`) is erased: drop it from every
        per-profile stage."""
        raise NotImplementedError

    # -- batches ---------------------------------------------------------------------------------
    def _now_ms(self) -> int:
        # a version column for ReplacingMergeTree: strictly increasing within this process
        now = int(self._clock() * 1000)
        self._last_ms = now if now > self._last_ms else self._last_ms + 1
        return self._last_ms

    def _new_out(self):
        raise NotImplementedError

    def process(self, batch: list[IngestedTouchpoint], *, flush: bool = True):
        """Run `batch` through event time and identity. With flush=False the state changes stay
        pending until `flush()`: the worker first makes the batch's outputs durable, then
        advances its state, so a crash in between replays the batch instead of losing its
        outputs."""
        out = self._new_out()
        changed: dict[str, str | None] = {}
        for tp in batch:
            self._arrive(tp, out, changed)
        return self._done(out, changed, flush)

    def _done(self, out, changed: dict, flush: bool):
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

    # -- event time ------------------------------------------------------------------------------
    def _arrive(self, tp: IngestedTouchpoint, out, changed: dict) -> None:
        """An event comes in: held until the frontier passes it, or (older than the clock: events
        newer than it were processed already) processed at once, late when behind the watermark."""
        source = tp.pop(SOURCE, None)
        offset = tp.pop(OFFSET, None)
        watermark = self.watermark
        if source == NOT_A_SOURCE:  # a preference record: not part of the stream's event time
            self._apply(tp, out, changed, watermark.value)
            return
        source = "" if source is None else str(source)
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
                self._late(tp, late_record(tp, source, before, watermark.lateness_ms), out)
            self._apply(tp, out, changed, before)
        if flags & MOVED:
            self._release(out, changed)

    def _release(self, out, changed: dict) -> None:
        """Apply the held events the frontier has passed, in (event time, event id) order, each
        at its threshold; then the firing point of the new watermark."""
        watermark = self.watermark
        frontier = watermark.frontier()
        if frontier <= watermark.clock:
            return
        lateness = watermark.lateness_ms
        apply = self._apply
        for tp in self.buffer.release(frontier):
            apply(tp, out, changed, tp["event_time"] - lateness)
        watermark.advance(frontier)
        self._passed(watermark.value, out)

    def set_sources(self, partitions: int) -> None:
        """The input has `partitions` partitions: each holds the frontier until it reports."""
        self.watermark.sources = tuple(str(i) for i in range(partitions))
        self.watermark.reset()

    def idle(self, source: str, *, at: int | None = None, flush: bool = True):
        """Input partition `source` is idle (all consumed; `at`: its log end offset then): the
        frontier stops waiting for it, and the events and timers it passes are processed."""
        out = self._new_out()
        changed: dict[str, str | None] = {}
        self.watermark.mark_idle(str(source), at)
        self._release(out, changed)
        return self._done(out, changed, flush)

    def release(self, *, flush: bool = True):
        """Process what the frontier has passed (after the worker decided idle reports)."""
        out = self._new_out()
        changed: dict[str, str | None] = {}
        self._release(out, changed)
        return self._done(out, changed, flush)

    def resume(self, source: str) -> None:
        """Input partition `source`, reported idle, has records again (ingest saw its high-water
        mark move): it holds the frontier back again before any newer record of another
        partition is processed."""
        self.watermark.resume(str(source))

    def end_of_input(self, *, flush: bool = True):
        """Nothing more will come (the end of a replayed file): every partition is idle, so every
        held event is processed; the watermark stays at the newest event minus the lateness, as
        in a stream whose partitions all went idle."""
        out = self._new_out()
        changed: dict[str, str | None] = {}
        for source in {*self.watermark.sources, *self.watermark.marks}:
            self.watermark.mark_idle(source)
        self._release(out, changed)
        return self._done(out, changed, flush)

    # -- identity --------------------------------------------------------------------------------
    def _resolve(self, tp: dict, out, changed: dict):
        """The event's identity: its Resolution (None for an anonymous event); refusals and
        changed identifiers noted in `out` and `changed`, merges left to the caller."""
        ids = tp.get("ids")
        if not ids:
            return None
        res = self.identity.resolve(ids, tp["event_id"], tp["event_time"])
        for merge in res.merges:
            out.identity.append(_identity_event(merge, tp["event_time"]))
        for refusal in res.refused:
            out.identity.append({
                "kind": "refused", "survivor": refusal.profile_id, "absorbed": [],
                "identifiers": [refusal.identifier], "event_id": refusal.event_id,
                "reason": refusal.reason, "at": tp["event_time"],
            })
        if res.changed_ids:
            profile_of = self.identity.profile_of
            for key in res.changed_ids:
                changed[key] = profile_of(key)
        return res

    def forget(self, identifier: str, *, request_id: str | None = None, flush: bool = True):
        """Right to erasure: drop the whole profile holding `identifier` ("type:value", email and
        phone already hashed) from identity and every stage. Always emits one `forget` identity
        event, with an empty survivor when no profile holds the identifier."""
        out = self._new_out()
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
        self._erase(gone.profile_id, list(gone.identifiers), request_id, out)
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
        self.buffer.reset()

    def flush(self) -> int:
        return sum(state.flush() for state in self.states.values())


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


def _identity_event(merge, at: int) -> dict:
    return {"kind": "merge", "survivor": merge.survivor, "absorbed": list(merge.absorbed),
            "identifiers": list(merge.identifiers), "event_id": merge.event_id, "reason": None,
            "at": at}
