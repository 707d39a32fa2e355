"""Event time: per-partition watermarks with allowed lateness.

Each source partition (an input Kafka partition, or the file under `parcours replay`) has its own
high mark: the newest event time seen on it. The watermark is the oldest of those marks, minus the
allowed lateness: every partition has moved past it, and events up to `lateness` out of order are
still ahead of it. While the input is caught up in chunks (a backlog, a restart), one partition may
run hours ahead of another: the slowest one holds the watermark, so nothing becomes late.

The partitions the input has (`sources`) count from the start: one that has sent nothing yet holds
the watermark back. An idle partition (fully consumed, nothing new: a processing-time fact only the
worker knows) is declared with `mark_idle` and stops holding it back until it sends again; the
worker does this from a timer (`PARCOURS_IDLE_SECONDS`), so an empty partition never freezes the
absence timers.

An event older than the watermark is late: the moment rules skip it (it goes to the late-events
output with the reason); identity and attribution still take it. Timers (absences, deferred
triggers, journeys closing without a conversion) fire once the watermark has passed their deadline,
so an event within the lateness always arrives in time to count. The marks live in the state store under one key, written once per batch.
"""
from __future__ import annotations

from streams.state import BatchState
from streams.timers import WATERMARK_KEY

KEY = WATERMARK_KEY
NEVER = -(2 ** 62)


class Watermark:
    __slots__ = ("state", "lateness_ms", "sources", "idle", "_marks", "_value")

    def __init__(self, state: BatchState, lateness_ms: int, sources=()):
        self.state = state
        self.lateness_ms = lateness_ms
        self.sources = tuple(sources)  # partitions expected: each holds the watermark until it reports
        self.idle: set[str] = set()  # partitions declared idle, until they send again
        self._marks: dict | None = None
        self._value = NEVER

    def reset(self) -> None:
        """Forget cached values (after the backing store was recovered or replaced)."""
        self._marks = None
        self._value = NEVER

    @property
    def value(self) -> int:
        if self._marks is None:
            self._load()
        return self._value

    def _load(self) -> None:
        marks = self.state.get(KEY) or {}
        self._marks = marks
        self._value = self._compute(marks)

    def _compute(self, marks: dict) -> int:
        if not marks:
            return NEVER
        idle = self.idle
        if any(s not in marks and s not in idle for s in self.sources):
            return NEVER
        active = [m for s, m in marks.items() if s not in idle]
        return (min(active) if active else max(marks.values())) - self.lateness_ms

    def mark_idle(self, source: str) -> None:
        """`source` has nothing more to send for now: stop waiting for it."""
        if source not in self.idle:
            self.idle.add(source)
            if self._marks is None:
                self._load()
            self._value = max(self._value, self._compute(self._marks))

    def observe(self, source: str, event_time: int) -> bool:
        """Account for an event of `source`; True when it is late (older than the watermark as it
        stood before this event)."""
        if self._marks is None:
            self._load()
        if event_time < self._value:
            return True
        if source in self.idle:
            self.idle.discard(source)
            self._value = max(self._value, self._compute(self._marks))
        marks = self._marks
        previous = marks.get(source, NEVER)
        if event_time > previous:
            if not self.state.is_pending(KEY):
                marks = self._marks = dict(marks)
                self.state.set(KEY, marks)
            marks[source] = event_time
            # only the slowest partition (or a newcomer, or the last idle one) moves the watermark
            if previous - self.lateness_ms <= self._value or len(self.idle) >= len(marks) - 1:
                self._value = max(self._value, self._compute(marks))
        return False
