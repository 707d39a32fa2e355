"""Consistent cuts of a stage's state on its changelog, without transactions.

The sequencer and each shard keep all their stores in one Faust table partition (the sequencer's
table has one partition, the shards' table one per shard), so one batch's state changes are one
run of records on ONE changelog partition: ordered, and written by one owner at a time. Each run
is framed:

    ~abort, the batch's records (one per key changed), ~commit

and recovery applies a run only when its `~commit` is read (`CommitFilter`, wrapped around the
table's `apply_changelog_batch`; standbys read through it too). A worker killed at any point
leaves at most one unframed tail; the next owner's first `~abort` discards it, and until then a
recovery holds it back (Faust's persisted offset never passes a held record, so the next
recovery reads it again). So the state recovered is always exactly the state after some
committed batch, and the input positions in it (the `clock` store) say where to resume: a crash
mid-changelog replays the batch instead of mixing half of it into the state.

`Journal` is one table partition's state as the core sees it: one view per core store, each
under its own key prefix (`CODES`), over Faust's store:
- `memory`: Faust's dict (`table.data.data`), each key's partition noted so that Faust drops the
  keys of a partition this worker lost;
- `rocksdb`: the partition's RocksDB database. Reads go through a bounded cache of decoded
  values; writes wait in the view until the broker acknowledged their changelog records, then
  one RocksDB write batch puts them and the persisted offset (`acked`), so the database is always
  a prefix of its changelog.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import orjson

__all__ = ["ABORT", "COMMIT", "CODES", "CommitFilter", "Journal", "OFFSET_KEY"]

ABORT, COMMIT = "~abort", "~commit"
_ABORT_KEY, _COMMIT_KEY = orjson.dumps(ABORT), orjson.dumps(COMMIT)
OFFSET_KEY = b"__faust\0offset__"  # faust.stores.rocksdb.Store.offset_key
# a short prefix per core store: one table holds them all
CODES = {"ids": "i", "profiles": "p", "pending": "h", "shards": "s", "clock": "c",
         "paths": "a", "moments": "m", "prefs": "g", "timers": "t", "kinds": "k",
         "parked": "q", "transfers": "x", "traits": "r"}


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MISSING = _Sentinel("<missing>")
_ABSENT = _Sentinel("<absent>")  # cached: the key is not in the table


class MemoryView:
    """One core store over Faust's in-memory table: keys `prefix + key` in the table's dict."""

    __slots__ = ("data", "where", "prefix", "partition", "changes")

    def __init__(self, table, partition: int, prefix: str):
        self.data = table.data.data
        self.where = table.data._key_partition  # noqa: SLF001 - Faust's cleanup reads it
        self.prefix = prefix
        self.partition = partition
        self.changes: dict = {}  # key -> its last value since the last drain (None: deleted)

    def get(self, key, default=None):
        return self.data.get(self.prefix + key, default)

    def __getitem__(self, key):
        return self.data[self.prefix + key]

    def __contains__(self, key):
        return self.prefix + key in self.data

    def __setitem__(self, key, value):
        full = self.prefix + key
        self.data[full] = value
        self.where[full] = self.partition
        self.changes[key] = value

    def __delitem__(self, key):
        full = self.prefix + key
        self.data.pop(full, None)
        self.where.pop(full, None)
        self.changes[key] = None

    def items(self) -> Iterator[tuple]:
        prefix, n = self.prefix, len(self.prefix)
        return ((k[n:], v) for k, v in list(self.data.items())
                if isinstance(k, str) and k.startswith(prefix)
                and self.where.get(k, self.partition) == self.partition)

    def __iter__(self):
        return (key for key, _ in self.items())

    def __len__(self):
        return sum(1 for _ in self.items())

    def drain(self) -> list[tuple[bytes, bytes | None]]:
        changes, self.changes = self.changes, {}
        dumps, prefix = orjson.dumps, self.prefix
        return [(dumps(prefix + k), None if v is None else dumps(v)) for k, v in changes.items()]

    def write(self, batch) -> None:
        """Nothing to write: the dict has every value already."""

    def recovered(self) -> None:
        self.changes.clear()  # whatever was not committed is gone from the recovered table


class RocksView:
    """One core store over a table partition's RocksDB database (see the module docstring).
    Layers, read in this order: the cache (decoded values, known-absent keys), the writes since
    the last drain, the records drained and not yet acknowledged, the database."""

    __slots__ = ("table", "partition", "prefix", "raw_prefix", "cache", "changes", "unacked",
                 "cache_keys")

    def __init__(self, table, partition: int, prefix: str, cache_keys: int = 100_000):
        self.table = table
        self.partition = partition
        self.prefix = prefix
        self.raw_prefix = orjson.dumps(prefix)[:-1]  # b'"i/' : the JSON keys of this store
        self.cache: dict = {}
        self.changes: dict = {}
        self.unacked: dict = {}  # key -> (key bytes, value bytes | None)
        self.cache_keys = max(16, cache_keys)

    def _db(self):
        db = self.table.data._dbs.get(self.partition)  # noqa: SLF001 - never kept: Faust
        if db is None:  # closes and reopens it on rebalances
            db = self.table.data._db_for_partition(self.partition)  # noqa: SLF001
        return db

    def _remember(self, key, value) -> None:
        cache = self.cache
        cache[key] = value
        if len(cache) > self.cache_keys:
            for old in list(itertools.islice(cache, len(cache) // 10 or 1)):
                del cache[old]

    def _load(self, key):
        value = self.changes.get(key, _MISSING)
        if value is _MISSING:
            record = self.unacked.get(key)
            raw = record[1] if record is not None else self._db().get(
                orjson.dumps(self.prefix + key))
            value = _ABSENT if raw is None else orjson.loads(raw)
        elif value is None:
            value = _ABSENT
        self._remember(key, value)
        return value

    def get(self, key, default=None):
        value = self.cache.get(key, _MISSING)
        if value is _MISSING:
            value = self._load(key)
        return default if value is _ABSENT else value

    def __getitem__(self, key):
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __contains__(self, key):
        return self.get(key, _MISSING) is not _MISSING

    def __setitem__(self, key, value):
        if value is None:
            del self[key]
            return
        self._remember(key, value)
        self.changes[key] = value

    def __delitem__(self, key):
        self._remember(key, _ABSENT)
        self.changes[key] = None

    def items(self) -> Iterator[tuple]:
        """Every (key, value) of this store: the database's keys under the prefix, overlaid with
        the pending writes (recovery of the timer index and the parked set, not per event)."""
        loads, n = orjson.loads, len(self.prefix)
        pending = {**{k: (loads(v) if v is not None else None)
                      for k, (_kb, v) in self.unacked.items()}, **self.changes}
        raw_prefix = self.raw_prefix
        for raw_key, raw in self._db().items(from_key=raw_prefix):
            if not raw_key.startswith(raw_prefix):
                break
            key = loads(raw_key)[n:]
            if key not in pending:
                yield key, loads(raw)
        for key, value in pending.items():
            if value is not None:
                yield key, value

    def __iter__(self):
        return (key for key, _value in self.items())

    def __len__(self):
        return sum(1 for _ in self.items())

    def drain(self) -> list[tuple[bytes, bytes | None]]:
        """The records of the writes since the last drain, and of any earlier drain not yet
        acknowledged (sent again: a record replayed is harmless, one lost is not)."""
        dumps, prefix = orjson.dumps, self.prefix
        if self.changes:
            changes, self.changes = self.changes, {}
            self.unacked.update((k, (dumps(prefix + k), None if v is None else dumps(v)))
                                for k, v in changes.items())
        return list(self.unacked.values())

    def write(self, batch) -> None:
        for kb, vb in self.unacked.values():
            if vb is None:
                batch.delete(kb)
            else:
                batch.put(kb, vb)
        self.unacked.clear()

    def recovered(self) -> None:
        """Faust's recovery wrote the database: cached values and unsent writes are stale."""
        self.cache.clear()
        self.changes.clear()
        self.unacked.clear()


class Journal:
    """One table partition's state: a view per core store (`names`), framed drains, acks."""

    def __init__(self, table, partition: int, names, kind: str, cache_keys: int = 100_000):
        self.table = table
        self.partition = partition
        self.kind = kind
        if kind == "rocksdb":
            self.views = {name: RocksView(table, partition, CODES[name] + "/", cache_keys)
                          for name in names}
        else:
            self.views = {name: MemoryView(table, partition, CODES[name] + "/")
                          for name in names}
        self.topic = table.changelog_topic.get_topic_name()

    def drain(self) -> list[tuple]:
        """The batch's changelog records, framed (`~abort` ... `~commit`), to this partition; []
        when nothing changed."""
        body = [r for view in self.views.values() for r in view.drain()]
        if not body:
            return []
        topic, p = self.topic, self.partition
        return ([(topic, _ABORT_KEY, b"1", p)] + [(topic, kb, vb, p) for kb, vb in body]
                + [(topic, _COMMIT_KEY, b"1", p)])

    def acked(self, offset: int) -> None:
        """The broker holds this partition's drained records up to `offset` (rocksdb: write them
        and the offset in one RocksDB write batch)."""
        if self.kind != "rocksdb":
            return  # the dict has every value already
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for view in self.views.values():
            view.write(batch)
        batch.put(OFFSET_KEY, str(offset).encode())
        self.views_db().write(batch)

    def views_db(self):
        return next(iter(self.views.values()))._db()  # noqa: SLF001 - one database for all

    def recovered(self) -> None:
        for view in self.views.values():
            view.recovered()


class CommitFilter:
    """Wraps a table's `apply_changelog_batch`: per partition, the records since the last frame
    are held until their `~commit` (then applied, the commit record with them, so the persisted
    offset moves to it) or an `~abort` (then dropped)."""

    def __init__(self, table):
        self.apply = table.apply_changelog_batch
        self.pending: dict[int, list] = {}
        self.discarded = 0  # records of uncommitted batches dropped
        table.apply_changelog_batch = self

    def __call__(self, batch) -> None:
        ready = []
        pending = self.pending
        for event in batch:
            message = event.message
            held = pending.setdefault(message.partition, [])
            if message.key == _ABORT_KEY:
                self.discarded += len(held)
                held.clear()
            elif message.key == _COMMIT_KEY:
                ready.extend(held)
                ready.append(event)
                held.clear()
            else:
                held.append(event)
        if ready:
            self.apply(ready)

    def reset(self, partitions) -> None:
        """Recovery is over and this worker owns `partitions`: a tail still held there belongs to
        a batch that never committed (a standby's tail may still be completed: kept)."""
        for partition in partitions:
            held = self.pending.pop(partition, None)
            if held:
                self.discarded += len(held)
