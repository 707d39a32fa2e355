"""Events held until the frontier passes them, then handed out in (event time, event id) order.

One key of the `pending` store per held event (a Faust table in the worker, so a held event survives
a restart with the input offsets that were committed past it), whose value is the normalised
touchpoint. An in-memory heap orders the keys; it is rebuilt from the store at first use and after a
recovery (`reset`). An event held and released within one batch never reaches the store's
changelog (the batch's write and delete cancel out). A released touchpoint is handed out as stored
(no copy, on the hot path): the pipeline adds its `profile_id`, which the next release of the same
record (after a failed batch) sets again.
"""
from __future__ import annotations

import heapq
import itertools

from streams.state import TOMBSTONE, BatchState

_THIRTEEN_DIGITS = 10 ** 12  # epoch ms from 2001-09-09 on


class ReorderBuffer:
    __slots__ = ("state", "_heap", "_held", "_seq", "_pending_get", "_backing_get")

    def __init__(self, state: BatchState):
        self.state = state
        self._heap: list | None = None
        self._held = 0
        self._seq = itertools.count()
        # one add and one release per event: reads without a Python call each (values are dicts)
        self._pending_get, self._backing_get = state.lookups()

    def reset(self) -> None:
        self._heap = None

    def _ready(self) -> list:
        if self._heap is None:
            self._heap = [(v["event_time"], v["event_id"], k) for k, v in self.state.items()]
            heapq.heapify(self._heap)
            self._held = len(self._heap)
        return self._heap

    def __len__(self) -> int:
        """Events held."""
        self._ready()
        return self._held

    def add(self, tp: dict, source: str, offset) -> None:
        """Hold `tp` (from input record `offset` of `source`; None when it has no offset)."""
        t, event_id = tp["event_time"], tp["event_id"]
        # the zero-padded time without a format spec (the costly part) when it has 13 digits already
        at = f"{t}" if t.__class__ is int and t >= _THIRTEEN_DIGITS else f"{t:013d}"
        key = (f"{at}|{source}@{offset}|{event_id}" if offset is not None
               else f"{at}|#{next(self._seq)}|{event_id}")
        heap = self._heap if self._heap is not None else self._ready()  # before the write: a
        #                                                 heap built now must not index it twice
        held = self._pending_get(key)
        if held is None:
            held = self._backing_get(key)
        if held is None or held is TOMBSTONE:  # else held again: a batch re-applied after a crash
            self._held += 1
        self.state.set(key, tp)
        heapq.heappush(heap, (t, event_id, key))

    def release(self, before: int) -> list[dict]:
        """The held events older than `before`, oldest first; they leave the store."""
        heap = self._heap if self._heap is not None else self._ready()
        if not heap or heap[0][0] >= before:
            return []
        pending_get, backing_get, delete = self._pending_get, self._backing_get, self.state.delete
        released = []
        pop = heapq.heappop
        while heap and heap[0][0] < before:
            key = pop(heap)[2]
            tp = pending_get(key)
            if tp is None:
                tp = backing_get(key)
            if tp is None or tp is TOMBSTONE:  # dropped (erasure), or indexed twice
                continue
            delete(key)
            released.append(tp)
        self._held -= len(released)
        return released

    def drop(self, keep) -> int:
        """Delete the held events for which `keep(tp)` is false (erasure); returns how many."""
        dropped = 0
        for key, tp in list(self.state.items()):
            if not keep(tp):
                self.state.delete(key)
                dropped += 1
        if dropped:
            self._heap = None
        return dropped
