"""Event-time timers over a key-value state: absences, deferred triggers, path closings.

A timer is one key of the `timers` store (a Faust table in the worker, so timers survive a restart),
whose value is a dict with at least "k" (its kind) and "at" (its deadline, epoch ms of event
time). An in-memory heap indexes the deadlines; it is rebuilt from the store at first use and after
a recovery (`reset`). A deleted timer stays in the heap until its deadline and is skipped then.
Keys start with the zero-padded deadline, so the firing order (deadline, key) is deterministic.
Every timer's value names its profile ("p"): a shard holds back the timers of a profile that waits
for a hand-off (`due(..., hold=)`) and gives them back to the heap when it resumes (`unhold`).
"""
from __future__ import annotations

import heapq

from streams.state import BatchState

_INFINITY = float("inf")
WATERMARK_KEY = "~watermark"  # where versions before the event-time order kept the marks; ignored


def timer_key(deadline: int, *parts: str) -> str:
    return "|".join((f"{deadline:013d}", *parts))


class Timers:
    __slots__ = ("state", "_heap", "_held")

    def __init__(self, state: BatchState):
        self.state = state
        self._heap: list | None = None
        self._held: dict[str, list] = {}  # profile -> heap entries held back while it waits

    def reset(self) -> None:
        self._heap = None
        self._held = {}

    def _ready(self) -> list:
        if self._heap is None:
            self._heap = [(v["at"], k) for k, v in self.state.items() if k != WATERMARK_KEY]
            heapq.heapify(self._heap)
        return self._heap

    def add(self, key: str, value: dict) -> None:
        heap = self._ready()  # before the write: a heap built now must not index it twice
        self.state.set(key, value)
        heapq.heappush(heap, (value["at"], key))

    def get(self, key: str) -> dict | None:
        return self.state.get(key)

    def delete(self, key: str) -> None:
        self.state.delete(key)

    def earliest(self) -> float:
        """The earliest deadline indexed (a cancelled timer's included), or infinity."""
        heap = self._heap if self._heap is not None else self._ready()  # twice per event
        return heap[0][0] if heap else _INFINITY

    def due(self, watermark: int, hold=None):
        """Yield the timers strictly before `watermark`, oldest first, one at a time (a timer set
        while one fires, earlier than the next, fires before it: the order depends on the
        deadlines only, not on how far the watermark moved at once); their keys are deleted.
        A timer whose profile `hold(profile)` answers true for stays (until `unhold`)."""
        heap = self._ready()
        while heap and heap[0][0] < watermark:
            _at, key = heapq.heappop(heap)
            value = self.state.get(key)
            if value is None or value["at"] != _at:  # cancelled, or re-set with another deadline
                continue
            if hold is not None and hold(value["p"]):
                self._held.setdefault(value["p"], []).append((_at, key))
                continue
            self.state.delete(key)
            yield key, value

    def unhold(self, profile: str) -> None:
        """The timers held back for `profile` are due again."""
        entries = self._held.pop(profile, None)
        if entries:
            heap = self._ready()
            for entry in entries:
                heapq.heappush(heap, entry)
