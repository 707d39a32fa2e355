"""The worker's state: one Faust table per pipeline store, and the mapping the core sees over each.

Every table has one changelog partition; it lives with the owner of `parcours.stitch`, and a
worker taking over recovers it from its changelog. Where a table keeps its rows is
`PARCOURS_STORE` (streams/config.py):

- `rocksdb` (the default, for `parcours worker` in production): faust-streaming's RocksDB store
  (`rocksdb://`, driven by the `rocksdict` package), one RocksDB database per table under
  `PARCOURS_DATA_DIR/faust`. A worker restarted on the same disk reads only the changelog records
  written after the offset its database holds (the changelog's tail), not the whole changelog:
  restart time no longer grows with the number of profiles. `RocksTableStore` is the mapping.
- `memory`: Faust's `memory://` store, a dict per table; every start replays every changelog
  (34 s for 24,682 profiles measured, ~23 min at 1M). Kept because it is the simplest store, for
  comparisons (bench/restart.py) and for whoever wants no local files; `parcours demo` and the
  tests run the default, so the production path is the tested one (the demo deletes its data dir
  with its broker, so no stale local state can meet a fresh changelog).

Either way the records on the changelog are Faust's own format (JSON key, JSON value, None =
delete), produced by the shell with its batched producer, not by Faust's `table[key] = value`,
so Faust's own recovery (from the start on a new disk, from the persisted offset on the same
disk) reads them back.

Offsets (rocksdb): Faust's RocksDB store keeps the offset of the last changelog record applied to
the database under `__faust\0offset__` and recovers from the next one. Faust only sets it when it
applies changelog records itself (recovery, standbys); the records the shell produces are acked
to the shell's `BatchProducer`, which calls `Tables.acked` with the last acked offset per changelog
partition (`BatchProducer.on_acked`). The store then writes the acked keys and that offset to its
database in one RocksDB write batch, so the database is always a prefix of its changelog: a crash
(kill -9) at any point leaves it at an offset whose records it holds, and the next start reads
the rest from the changelog. Nothing reaches the database before its changelog records are
acked: until then the values live in the store's pending maps (read first).

The end offset that decides where recovery stops comes from `streams.kafka.patches`
(`install_faust_recovery_fix`): with Tansu's ListOffsets answer (base offset of the last batch +
1), Faust's "highwater" would be the first offset of the last changelog batch, lower than the
persisted offset we write (the last offset of that batch); Faust's consistency check
(`recovery_consistency_check`, on by default) would then refuse to start with "persisted offset
ahead of highwater". With the fix, the highwater is the true last offset, which equals the
persisted offset after a clean ack: "nothing to recover", or the exact tail after a crash.
"""
from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping

import faust
import orjson

from streams.identity.graph import share_strings
from streams.pipeline import STORES, Pipeline
from streams.worker import gc_tuning, metrics

log = logging.getLogger("parcours.app")

TABLE_NAMES = {"ids": "identity-ids", "profiles": "identity-profiles", "paths": "journey-paths",
               "moments": "journey-moments", "prefs": "journey-preferences",
               "timers": "journey-timers", "pending": "journey-pending", "clock": "journey-clock"}

# faust-streaming 0.15.3 registers no "rocksdict://" scheme (an unknown scheme is taken as an import
# path: "rocksdict" then names the package itself, which is not a store): its "rocksdb://" store
# drives rocksdict (`driver` below; it also does by default when python-rocksdb is absent)
STORE_URLS = {"memory": "memory://", "rocksdb": "rocksdb://"}
OFFSET_KEY = b"__faust\0offset__"  # faust.stores.rocksdb.Store.offset_key
# RocksDB options per table (faust.stores.rocksdb.RocksDBOptions): Faust's defaults are sized for
# one big table (64 MB x 3 memtables, a 2 GB block cache); parcours has eight.
ROCKSDB_OPTIONS = {"driver": "rocksdict", "write_buffer_size": 16 * 1024**2,
                   "max_write_buffer_number": 2, "block_cache_size": 64 * 1024**2}


class TableStore:
    """The mapping the pure core sees over a Faust table (in-memory store).

    Reads and writes go to the table's local dict; every write also marks its key for the changelog,
    and the shell sends the marked keys' last values with the batch's other outputs (one batched
    produce, not one Faust send per key; a key written ten times in a batch is encoded once). The
    records use the table's own format (JSON key, JSON value, None = delete), so Faust's recovery
    reads them back into the table after a restart.
    """

    __slots__ = ("table", "data", "changes")

    def __init__(self, table):
        self.table = table
        self.data = table.data.data  # the memory store's dict
        self.changes: dict[str, object] = {}  # key -> its last value in this batch (None: deleted)

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __getitem__(self, key):
        return self.data[key]

    def __contains__(self, key):
        return key in self.data

    def __setitem__(self, key, value):
        self.data[key] = value
        self.changes[key] = value

    def __delitem__(self, key):
        self.data.pop(key, None)
        self.changes[key] = None

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return iter(self.data)

    def drain(self):
        """(topic, key, value) changelog records queued since the last drain."""
        topic = self.changelog_topic
        changes, self.changes = self.changes, {}
        dumps = orjson.dumps
        return [(topic, dumps(k), None if v is None else dumps(v)) for k, v in changes.items()]

    def acked(self, offset: int) -> None:
        """The changelog holds this store's drained records up to `offset`: nothing to do here,
        the dict has them already (and a restart replays the whole changelog anyway)."""

    def recovered(self) -> None:
        """Faust recovered the table (the dict is the table's own data: nothing to refresh)."""

    def share_strings(self) -> dict | None:
        return self.data

    def approximate_len(self) -> int:
        return len(self.data)


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_MISSING = _Sentinel("<missing>")
_ABSENT = _Sentinel("<absent>")  # cached: the key is not in the table


class RocksTableStore:
    """The mapping the pure core sees over a Faust table on RocksDB (`rocksdict://`).

    Layers, read in this order:
    - `cache`: decoded values (and known-absent keys), written through by every set and delete;
      bounded to `cache_keys` entries (the oldest inserted tenth is dropped when full: a dict
      keeps insertion order, so no per-read bookkeeping);
    - `changes`: keys written since the last `drain()` (None: deleted);
    - `unacked`: the encoded records drained, sent, and not yet acknowledged by the broker;
    - the RocksDB database (the table's partition 0), in Faust's byte format: the key and value
      exactly as on the changelog (orjson, as `TableStore` sends; Faust's recovery writes the
      changelog's bytes to the database unchanged, so both agree).

    `acked(offset)` writes `unacked` and the persisted offset to the database in one write batch
    (see the module docstring). Values are the core's plain JSON data; a value read is the
    cached object itself (read-only, as `BatchState` requires of every backing store).
    """

    __slots__ = ("table", "cache", "changes", "unacked", "cache_keys", "_dbs")

    def __init__(self, table, cache_keys: int = 100_000):
        self.table = table
        self.cache: dict = {}
        self.changes: dict = {}
        self.unacked: dict = {}  # key -> (key bytes, value bytes | None)
        self.cache_keys = max(16, cache_keys)
        # partition -> Rdict, opened lazily by Faust's store (never closed by it: a reference
        # to the dict, not to a database, so a revoked database can still be freed)
        self._dbs = table.data._dbs  # noqa: SLF001

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def _db(self):
        db = self._dbs.get(0)
        if db is None:  # opened by Faust at assignment; otherwise on first use (as Faust does)
            db = self.table.data._db_for_partition(0)  # noqa: SLF001
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
            if record is not None:
                raw = record[1]
            else:
                raw = self._db().get(orjson.dumps(key))
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
        if value is None:  # None is a tombstone on the changelog: the same here
            del self[key]
            return
        self._remember(key, value)
        self.changes[key] = value

    def __delitem__(self, key):
        self._remember(key, _ABSENT)
        self.changes[key] = None

    def items(self) -> Iterator[tuple]:
        """Every (key, value): the database overlaid with the pending writes. Scans the whole
        table (recovery of the timer index, exports), never on the per-event path."""
        pending = {**{k: (orjson.loads(v) if v is not None else None)
                      for k, (_kb, v) in self.unacked.items()}, **self.changes}
        loads = orjson.loads
        for raw_key, raw in self._db().items():
            if raw_key == OFFSET_KEY:
                continue
            key = loads(raw_key)
            if key not in pending:
                yield key, loads(raw)
        for key, value in pending.items():
            if value is not None:
                yield key, value

    def __iter__(self):
        return (key for key, _value in self.items())

    def __len__(self):
        return sum(1 for _ in self.items())

    def approximate_len(self) -> int:
        """RocksDB's estimate of the number of keys (cheap; for logs)."""
        return self._db().property_int_value("rocksdb.estimate-num-keys") or 0

    def drain(self):
        """(topic, key, value) changelog records of the writes since the last drain, and of any
        earlier drain whose send was not acknowledged (sent again: replaying a record is
        harmless, losing one is not)."""
        dumps = orjson.dumps
        if self.changes:
            changes, self.changes = self.changes, {}
            self.unacked.update(
                (k, (dumps(k), None if v is None else dumps(v))) for k, v in changes.items())
        topic = self.changelog_topic
        return [(topic, kb, vb) for kb, vb in self.unacked.values()]

    def acked(self, offset: int) -> None:
        """The broker acknowledged this store's drained records, the last at `offset`: write them
        and the offset to the database in one RocksDB write batch (atomic, in the WAL), so the
        database holds exactly the changelog up to the offset it records."""
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for kb, vb in self.unacked.values():
            if vb is None:
                batch.delete(kb)
            else:
                batch.put(kb, vb)
        batch.put(OFFSET_KEY, str(offset).encode())
        self._db().write(batch)
        self.unacked.clear()

    def recovered(self) -> None:
        """Faust's recovery (or a standby) wrote to the database: cached values may be stale.
        The pending maps stay: they hold writes not yet in the database."""
        self.cache.clear()

    def share_strings(self) -> dict | None:
        return None  # the cache fills as keys are read: nothing to share at recovery


class Tables:
    """The app's table of every pipeline store (`TABLE_NAMES`), and the stores over them.

    `store`: "memory" or "rocksdb", as the app was built with (`faust_app`, `STORE_URLS`).
    """

    def __init__(self, app: faust.App, store: str = "memory", cache_keys: int = 100_000):
        self.kind = store
        options = (lambda: dict(ROCKSDB_OPTIONS)) if store == "rocksdb" else (lambda: None)
        self.tables = {
            name: app.Table(TABLE_NAMES[name], default=None, partitions=1, use_partitioner=True,
                            key_type=str,  # keys and values: JSON (Faust default codec)
                            # a fresh dict each: Faust's RocksDB store pops keys from it
                            **({"options": options()} if store == "rocksdb" else {}))
            for name in STORES
        }
        if store == "rocksdb":
            self.stores = {name: RocksTableStore(table, cache_keys)
                           for name, table in self.tables.items()}
        else:
            self.stores = {name: TableStore(table) for name, table in self.tables.items()}
        self.by_topic = {store_.changelog_topic: store_ for store_ in self.stores.values()}
        for table in self.tables.values():
            _count_recovered(table)

    def on_recover(self, pipeline: Pipeline) -> None:
        """What follows the tables' recovery from their changelogs (at start, after a takeover)."""
        stores = self.stores

        def refresh() -> None:
            # Faust calls a table's callbacks in no set order, after every table has recovered:
            # each callback first drops every cached value (cheap once done)
            for store in stores.values():
                store.recovered()

        async def after_recovery() -> None:
            refresh()
            ids, profiles = stores["ids"].share_strings(), stores["profiles"].share_strings()
            if ids is not None:
                # recovered JSON holds one copy of each string per table: share them again (~40%
                # less memory)
                shared = share_strings(ids, profiles)
                log.info("identity tables recovered: %d identifiers, %d profiles",
                         len(stores["ids"]), shared)
            else:
                log.info("identity tables recovered (rocksdb): ~%d identifiers, ~%d profiles "
                         "(RocksDB's estimates)", stores["ids"].approximate_len(),
                         stores["profiles"].approximate_len())
            gc_tuning.freeze()  # the recovered state is long-lived: out of the collector's way

        async def timers_recovered() -> None:
            refresh()
            pipeline.reset_caches()  # the timer index, held events and the clock from the tables
            log.info("recovered ~%d timers, ~%d held events", stores["timers"].approximate_len(),
                     stores["pending"].approximate_len())

        self.tables["profiles"].on_recover(after_recovery)
        for name in ("timers", "pending", "clock"):
            self.tables[name].on_recover(timers_recovered)

    def changelog(self) -> list[list]:
        """The changelog records of the state changes since the last call, in two phases the shell
        sends one after the other: every store but the clock, then the clock (the input positions),
        so the positions never run ahead of the state."""
        stores = self.stores
        return [[r for name, store in stores.items() if name != "clock" for r in store.drain()],
                stores["clock"].drain()]

    def acked(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """`BatchProducer.on_acked`: the last acknowledged offset per (topic, partition) of one
        `send_all`. For a changelog topic, its store records that its drained writes are there."""
        by_topic = self.by_topic
        for (topic, _partition), offset in offsets.items():
            store = by_topic.get(topic)
            if store is not None:
                store.acked(offset)



def _count_recovered(table) -> None:
    """Count the changelog records Faust's recovery applies to `table`
    (`parcours_changelog_recovered_total{table}`): recovery calls `table.apply_changelog_batch`
    with every buffer of records it read, actives and standbys alike."""
    apply = getattr(table, "apply_changelog_batch", None)
    if apply is None:  # a stand-in table (unit tests)
        return
    counter = metrics.CHANGELOG_RECOVERED.labels(table.name)

    def apply_changelog_batch(batch) -> None:
        batch = batch if isinstance(batch, list) else list(batch)
        counter.inc(len(batch))
        apply(batch)

    table.apply_changelog_batch = apply_changelog_batch
