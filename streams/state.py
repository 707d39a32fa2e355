"""`BatchState`: a read-through, write-back view over a key-value store, flushed once per batch.

The stateful stages (identity, moments, attribution) read and write many keys per batch, often the
same key many times. Against a Faust table every write is a changelog record, so writing through
would cost one Kafka message per event and key. `BatchState` keeps the batch's writes in a small
pending map and `flush()` writes each dirty key once: one changelog record per key per batch,
whatever the number of events that touched it.

The backing store is any `MutableMapping[str, Any]`: a plain dict in `parcours replay` and in tests,
a Faust `Table` (or a thin adapter over one) in the worker. What is used: `get(key, default)`, `in`,
`[key]`, `[key] = value`, `del [key]`, and iteration (`items()` when present, else keys) for
`items()`. `BatchState` itself never imports Faust.

Reads consult the pending writes first, then the backing store, so a stage sees its own writes at
once. `delete(key)` records a pending tombstone; `flush()` then removes the key from the backing
store if it is there.

Batch atomicity: nothing reaches the backing store before `flush()`. If processing a batch raises,
the shell calls `discard()` and the backing store is exactly as it was before the batch. `flush()`
clears the pending map only after every write succeeded, so a flush interrupted by a failing store
can be retried as a whole (writes are idempotent).

Value ownership (the contract that makes the above true; it is not checked, for speed):
- Values are JSON-serialisable plain data (dict, list, str, int, float, bool, None), so that a Faust
  table can serialise them and `json` round-trips them unchanged.
- `get()` returns the stored object itself, not a copy (this runs per event in the hot path). A
  value read for a key that is not pending is the backing store's object: treat it as read-only. To
  change it, build a new value (or a copy), modify that, and `set()` it. Mutating it in place would
  change the backing store before `flush()` (for a Faust table: its in-memory copy without a
  changelog record, so the next recovery would silently disagree) and would survive a `discard()`.
- A value given to `set()` belongs to the state from then on. While its key is pending
  (`is_pending(key)`), the caller may keep mutating it in place: the pending object is exactly what
  `flush()` will write. After `flush()` it is the backing store's object and read-only again.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

__all__ = ["BatchState", "TOMBSTONE"]


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


_MISSING: Any = _Sentinel("<missing>")
_DELETED: Any = _Sentinel("<deleted>")
TOMBSTONE: Any = _DELETED  # the pending value of a deleted key, as seen through `lookups()`


class BatchState:
    """Read-through, write-back view over `backing` (the module docstring: the value contract).

    The pending map and the backing store are created/bound once and never replaced (flush and
    discard clear the pending map in place), so the bound methods handed out by `lookups()` stay
    valid.
    """

    __slots__ = ("_backing", "_pending")

    def __init__(self, backing: MutableMapping[str, Any] | None = None) -> None:
        self._backing: MutableMapping[str, Any] = {} if backing is None else backing
        self._pending: dict[str, Any] = {}

    # -- reads -------------------------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key` (pending write first, then the backing store), or `default`."""
        value = self._pending.get(key, _MISSING)
        if value is _MISSING:
            return self._backing.get(key, default)
        return default if value is _DELETED else value

    def __getitem__(self, key: str) -> Any:
        value = self._pending.get(key, _MISSING)
        if value is _MISSING:
            return self._backing[key]
        if value is _DELETED:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        value = self._pending.get(key, _MISSING)  # type: ignore[call-overload]
        if value is _MISSING:
            return key in self._backing
        return value is not _DELETED

    def lookups(self) -> tuple[Callable[[str], Any], Callable[[str], Any]]:
        """(pending_get, backing_get) for hot loops that cannot afford a Python call per read.

        A read is `v = pending_get(key)`, then `backing_get(key)` when v is None; a pending value of
        `TOMBSTONE` means the key is deleted. Only for stores whose values are never None.
        """
        return self._pending.get, self._backing.get

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every live (key, value) of the merged view: the backing store overlaid with pending
        writes.

        Backing keys come first in the backing store's order, then keys created in this batch. Scans
        the whole backing store: for exports and checks, not for the per-event path.
        """
        pending = self._pending
        backing = self._backing
        items = getattr(backing, "items", None)
        if items is not None:
            for key, value in items():
                if key not in pending:
                    yield key, value
        else:  # a minimal adapter (e.g. over a Faust table's local store): keys and lookups only
            for key in list(backing):
                if key not in pending:
                    yield key, backing[key]
        for key, value in pending.items():
            if value is not _DELETED:
                yield key, value

    # -- writes ------------------------------------------------------------------------------------
    def set(self, key: str, value: Any) -> None:
        """Record a write of `value` under `key`; it reaches the backing store at `flush()`."""
        self._pending[key] = value

    def delete(self, key: str) -> None:
        """Record a deletion of `key` (a pending tombstone); applied at `flush()` if the key
        exists."""
        self._pending[key] = _DELETED

    def is_pending(self, key: str) -> bool:
        """True when `key` has an unflushed write or tombstone (its pending value may be
        mutated)."""
        return key in self._pending

    @property
    def pending(self) -> int:
        """Number of dirty keys (writes and tombstones) waiting for `flush()`."""
        return len(self._pending)

    @property
    def backing(self) -> MutableMapping[str, Any]:
        """The backing store (read it only between batches: it does not show pending writes)."""
        return self._backing

    def flush(self) -> int:
        """Write each pending key once to the backing store and clear the pending map.

        Returns the number of operations applied to the backing store: one per written key, one per
        tombstone whose key existed there (a tombstone for an absent key costs a lookup, no write).
        If the backing store raises, the pending map is kept whole so the flush can be retried.
        """
        pending = self._pending
        if not pending:
            return 0
        backing = self._backing
        applied = 0
        for key, value in pending.items():
            if value is _DELETED:
                if key in backing:
                    del backing[key]
                    applied += 1
            else:
                backing[key] = value
                applied += 1
        pending.clear()
        return applied

    def discard(self) -> int:
        """Drop every pending write and tombstone (a failed batch); returns how many were
        dropped."""
        dropped = len(self._pending)
        self._pending.clear()
        return dropped

    def __repr__(self) -> str:
        return f"BatchState(pending={len(self._pending)}, backing={type(self._backing).__name__})"
