"""What one store access costs: a get or a set of one key through each store's journal view
(streams/worker/journal.py: `MemoryView` over Faust's dict, `RocksView` over a real database opened
as the worker opens it), in microseconds of CPU. Part of the restart section (bench/restart.py)."""
from __future__ import annotations

import gc
import shutil
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from streams.worker.journal import OFFSET_KEY, Journal
from streams.worker.tables import ROCKSDB_OPTIONS

__all__ = ["access", "bench_access", "open_rocksdb"]


def open_rocksdb(path: Path):
    """A table partition's database as the worker opens it (Faust's opener, its options)."""
    from faust.stores.rocksdb import RocksDBOptions

    options = {k: v for k, v in ROCKSDB_OPTIONS.items() if k != "driver"}
    path.parent.mkdir(parents=True, exist_ok=True)
    return RocksDBOptions(use_rocksdict=True, **options).open(path)


def _stand_in(kind: str, db=None) -> SimpleNamespace:
    """A table partition as a journal sees it, without Faust (memory: its dict; RocksDB: its
    database)."""
    data = (SimpleNamespace(data={}, _key_partition={}) if kind == "memory"
            else SimpleNamespace(_dbs={0: db}))
    return SimpleNamespace(data=data, changelog_topic=SimpleNamespace(get_topic_name=lambda: "t"))


def bench_access(n: int = 200_000) -> dict[str, float]:
    """`access` twice, the first a warm-up (a fresh process's first pass pays for its heap's
    growth, page faults: several times the second pass's set cost); the second pass's figures."""
    access(n)
    return access(n)


def access(n: int) -> dict[str, float]:
    """CPU per get / set of one key through each store's journal view, in microseconds: memory
    (`MemoryView` over Faust's dict) and RocksDB (`RocksView` over a real database opened with the
    worker's options): a read that hits its cache, a read of a key not cached (RocksDB get +
    orjson decode), and a write with its share of the framed drain (encode) and ack (write batch
    + offset), as the shells do per batch."""
    value = {"ids": ["cookie:c-1", "email:ab12"], "first_seen": 1794803490052, "n": 3,
             "channels": ["email", "display", "web"]}
    keys = [f"p-{i:020x}" for i in range(n)]
    results: dict[str, float] = {}
    gc.collect()
    tmp = tempfile.mkdtemp(prefix="parcours-access-")
    try:
        memory = Journal(_stand_in("memory"), 0, ["profiles"], "memory")
        db = open_rocksdb(Path(tmp) / "t-0.db")
        rocks = Journal(_stand_in("rocksdb", db), 0, ["profiles"], "rocksdb", cache_keys=n // 4)
        offset = 0
        for label, journal in (("memory", memory), ("rocksdb", rocks)):
            store = journal.views["profiles"]
            started = time.process_time()
            for i in range(0, n, 2000):  # batches of 2,000 writes, as the shells drain them
                for key in keys[i:i + 2000]:
                    store[key] = value
                offset += len(journal.drain())
                journal.acked(offset - 1)
            results[f"{label}_set_us"] = (time.process_time() - started) / n * 1e6
            hot = keys[-n // 8:]  # in the cache (the last written)
            get = store.get
            started = time.process_time()
            for _ in range(8):
                for key in hot:
                    get(key)
            results[f"{label}_get_hit_us"] = (time.process_time() - started) / (8 * len(hot)) * 1e6
        rocks.recovered()  # empty cache: every read goes to RocksDB, then is cached
        cold = keys[: n // 8]
        get = rocks.views["profiles"].get
        started = time.process_time()
        for key in cold:
            assert get(key) is not None
        results["rocksdb_get_miss_us"] = (time.process_time() - started) / len(cold) * 1e6
        assert db.get(OFFSET_KEY) is not None
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results
