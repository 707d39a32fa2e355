"""Event time: the release frontier, the watermark, and the input position per partition.

Each source partition (an input Kafka partition, or the file under `parcours replay`) has its own
high mark: the newest event time seen on it. Two times are derived from the marks:

- the **frontier** is the oldest mark of the partitions that are not idle: every partition has sent
  an event at least that new, so (partitions being in time order) nothing older can still come. The
  pipeline holds each event until the frontier has passed it, then processes the held events in
  (event time, event id) order: the order of the stream no longer depends on how the partitions
  interleaved on their way in. When every partition is idle, everything held is released.
- the **clock** is where that ordered stream stands (the frontier at the last release, never moving
  back), and the **watermark** (`value`) is the clock minus the allowed lateness: what depends on
  having seen every earlier event (absences, credit, journeys closing) happens once the watermark
  has passed it, so an event up to `lateness` out of order within its partition still counts.

An event older than the clock arrives after newer events were processed: it is processed at once,
where it arrives. One older than the watermark is also *late*: the moment rules skip it (it goes to
the late-events output with the reason); identity and attribution still take it.

The partitions the input has (`sources`) count from the start: one that has sent nothing yet holds
the frontier back. An idle partition (fully consumed, nothing new: a processing-time fact only the
worker knows) is declared with `mark_idle` and stops holding it back until it sends again; the
worker does this from a timer (`PARCOURS_IDLE_SECONDS`), so an empty partition never freezes the
stream. Ingest reports an idle partition active again (`resume`) as soon as it sees records there,
before it forwards newer records of other partitions, so its records are not overtaken. With
several workers the one forwarding newer records of other partitions may not be the one that reads
it (which may be down), so an idle report gives the partition's log end offset: the worker notes
it (`report_idle`), checks the log end and `decide`s (idle, or not: the log grew), and resumes an
idle partition whose log grew past its offset (`idle_at`). The idle set, the offsets and the
undecided reports are part of the state: they survive a restart with the rest. So is the part of
the stitch order the worker's last check of the log ends decided for (`checked`): messages read
again after a crash meet the decisions made for them the first time (recorded before anything they
released was sent) instead of asking the broker again, whose answer may have changed since.

The position of each partition (the last input offset applied) is kept with the marks, so an input
record delivered again (ingest re-reading after a restart forwards it a second time) is recognised
and skipped; so is the worker's position in the stitch topic, so the messages re-read after a crash
(touchpoints and control records such as idle reports) are skipped too: the state applies each
input record and each stitch message once.

The marks, the clock and the positions are one record of the `clock` store, written once per batch;
the worker writes it after every other state change of the batch has reached its changelog.
"""
from __future__ import annotations

from datetime import datetime, timezone

from streams.state import BatchState

KEY = "watermark"
NEVER = -(2 ** 62)
ALL = 2 ** 62  # the frontier when every partition is idle: release everything held
# what `arrive` answers: the record was applied before, or it is held (not older than the clock),
# or it is behind (older than the clock); MOVED is added when the frontier may have moved
SEEN, HOLD, BEHIND, MOVED = 0, 1, 2, 4
_EMPTY = {"m": {}, "c": NEVER, "o": {}, "i": [], "s": -1, "a": {}, "r": {}, "k": [NEVER, NEVER]}


class Watermark:
    __slots__ = ("state", "lateness_ms", "sources", "_rec", "_front", "_pending_get")

    def __init__(self, state: BatchState, lateness_ms: int, sources=()):
        self.state = state
        self.lateness_ms = lateness_ms
        # the partitions expected: each holds the frontier back until it reports
        self.sources = tuple(sources)
        self._rec: dict | None = None
        self._front: int | None = None  # the frontier last computed (None: to compute)
        self._pending_get = state.lookups()[0]

    def reset(self) -> None:
        """Forget cached values (after the backing store was recovered or replaced)."""
        self._rec = None
        self._front = None

    def _record(self) -> dict:
        rec = self._rec
        if rec is None:
            stored = self.state.get(KEY)
            rec = stored if stored is not None and stored.keys() >= _EMPTY.keys() else {
                **_EMPTY, **(stored or {})}
            self._rec = rec
        return rec

    def _writable(self) -> dict:
        """The record, copied into the state at its first change of a batch."""
        rec = self._record()
        if self._pending_get(KEY) is not rec:
            rec = self._rec = {**rec, "m": dict(rec["m"]), "o": dict(rec["o"]), "i": list(rec["i"]),
                               "a": dict(rec["a"]), "r": dict(rec["r"])}
            self.state.set(KEY, rec)
        return rec

    @property
    def marks(self) -> dict:
        return self._record()["m"]

    @property
    def idle(self) -> frozenset:
        """Partitions declared idle, until they send again (or are reported active)."""
        return frozenset(self._record()["i"])

    @property
    def idle_at(self) -> dict[str, int]:
        """The input position (log end offset) each idle partition was reported idle at, where
        the report said (see `mark_idle`)."""
        return self._record()["a"]

    def _set_idle(self, source: str, idle: bool) -> None:
        if (source in self._record()["i"]) != idle:
            rec = self._writable()
            rec["i"] = sorted({*rec["i"], source}) if idle else [s for s in rec["i"] if s != source]
            if not idle:
                rec["a"].pop(source, None)
            self._front = None

    @property
    def clock(self) -> int:
        """Event time of the ordered stream: every event before it has been processed."""
        return self._record()["c"]

    @property
    def value(self) -> int:
        """The watermark: the clock minus the allowed lateness."""
        clock = self._record()["c"]
        return clock if clock == NEVER else clock - self.lateness_ms

    def frontier(self) -> int:
        """The oldest mark of the partitions not idle (NEVER while one has not reported; ALL when
        every partition is idle)."""
        rec = self._rec if self._rec is not None else self._record()
        marks, idle = rec["m"], rec["i"]
        front = NEVER
        if marks:
            for s in self.sources:  # a loop, not all(...): once per event, usually few sources
                if s not in marks and s not in idle:
                    break
            else:
                if not idle:
                    front = min(marks.values())
                else:
                    active = [m for s, m in marks.items() if s not in idle]
                    front = min(active) if active else ALL
        self._front = front
        return front

    @property
    def position(self) -> int:
        """The last offset of the stitch topic applied (-1: none): the worker skips what it
        reads again at or before it (after a crash, the topic is re-read from its last commit)."""
        return self._record()["s"]

    def set_position(self, offset: int) -> None:
        if offset > self.position:
            self._writable()["s"] = offset

    def arrive(self, source: str, offset: int | None, event_time: int) -> int:
        """Account for an event of `source` (input record `offset`, None when not known): SEEN
        when that record was applied before; else HOLD, or BEHIND when it is older than the
        clock, plus MOVED when the frontier may have moved (only the slowest partition, a
        newcomer or one back from idle moves it). The hot path: one call per event (the cached
        record read inline, as in `frontier`)."""
        rec = self._rec if self._rec is not None else self._record()
        if offset is not None:
            if offset <= rec["o"].get(source, -1):
                return SEEN
            if self._pending_get(KEY) is not rec:
                rec = self._writable()
            rec["o"][source] = offset
        flags = HOLD if event_time >= rec["c"] else BEHIND
        if rec["i"] and source in rec["i"]:
            self._set_idle(source, False)
            rec = self._rec
            flags |= MOVED
        previous = rec["m"].get(source)
        if previous is None or event_time > previous:
            if self._pending_get(KEY) is not rec:
                rec = self._writable()
            rec["m"][source] = event_time
            front = self._front
            if front is None or previous is None or previous <= front:
                flags |= MOVED
        return flags

    def describe(self) -> str:
        """Which partitions hold the frontier, in one line (for an operator)."""
        rec = self._record()
        marks, idle = rec["m"], rec["i"]
        missing = [s for s in self.sources if s not in marks and s not in idle]
        if missing:
            return f"no event yet from partition(s) {', '.join(missing)}"
        active = {s: m for s, m in marks.items() if s not in idle}
        if not active:
            return "every partition idle"
        slowest = min(active.values())
        held_by = ", ".join(s for s, m in sorted(active.items()) if m == slowest)
        return (f"partition(s) {held_by} at {_iso(slowest)} hold the frontier; clock "
                f"{_iso(rec['c'])}; idle: {', '.join(idle) or 'none'}")

    def mark_idle(self, source: str, at: int | None = None) -> None:
        """`source` has nothing more to send for now: stop waiting for it. `at`: the partition's
        log end offset when it was found idle (every record before it forwarded), kept while it
        is idle so that the worker can tell when records came after it (`idle_at`)."""
        self._set_idle(source, True)
        if at is not None and self._record()["a"].get(source) != at:
            self._writable()["a"][source] = at

    def resume(self, source: str) -> None:
        """`source`, declared idle, has records again: it holds the frontier from now on."""
        self._set_idle(source, False)
        if source in self._record()["r"]:
            self._writable()["r"].pop(source)

    @property
    def reported(self) -> dict[str, int]:
        """Idle reports not decided yet: source -> the log end offset it was found idle at."""
        return self._record()["r"]

    def report_idle(self, source: str, at: int) -> None:
        """`source` was found idle at log end offset `at`; `decide` says whether it is."""
        if self._record()["r"].get(source) != at:
            self._writable()["r"][source] = at

    @property
    def checked(self) -> tuple[int, int]:
        """The part of the stitch order the worker's last check of the log ends decided for:
        (position it was made at, last stitch offset of the batch it came before); (p, p) for a
        check after a batch; (NEVER, NEVER) before any."""
        start, stop = self._record()["k"]
        return start, stop

    def set_checked(self, start: int, stop: int) -> None:
        if self._record()["k"] != [start, stop]:
            self._writable()["k"] = [start, stop]

    def decide(self, source: str, idle: bool) -> None:
        """Settle `source`'s idle report: idle (unless a record at or after the offset it was
        found idle at has been applied since), or not (its log grew)."""
        at = self._record()["r"].get(source)
        if at is None:
            return
        rec = self._writable()
        rec["r"].pop(source)
        if idle and rec["o"].get(source, -1) < at:
            self.mark_idle(source, at)

    def advance(self, frontier: int) -> None:
        """The events before `frontier` were released: move the clock there (ALL: to the newest
        mark)."""
        rec = self._rec if self._rec is not None else self._record()
        target = max(rec["m"].values(), default=NEVER) if frontier == ALL else frontier
        if target > rec["c"]:
            if self._pending_get(KEY) is not rec:
                rec = self._writable()
            rec["c"] = target


def _iso(ms: int) -> str:
    if ms in (NEVER, ALL):
        return "never"
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="seconds")
