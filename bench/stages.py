"""Where a worker's time goes: the CPU cost of each stage per touchpoint, measured in-process.

The worker runs every stage of a touchpoint in one Python process (one core: the GIL), so the sum
of these costs bounds its throughput whatever the broker and Faust do: 50,000 touchpoints/s needs
the sum under 20 us. Each stage runs alone over the same touchpoints, in the worker's batch size,
in the order the worker runs them:

- ingest: decode, validate and normalise the raw records (`ingest_batch`);
- stitch hop: encode the internal messages and decode them on the journey side;
- journey core without rules: watermark, identity, attribution (`Pipeline.process`, empty pack);
- moments + preference gate: the default pack's extra cost over the empty pack;
- state changelog: the pipeline's flush and the changelog records' encoding (memory store);
- output records: every output touchpoint, identity event, credit, trigger as a topic record, and
  the batch's ClickHouse rows as sink-topic blocks (`journey_records`, as the journey stage does);
- sink stage: the sink blocks decoded, their rows built, checked and buffered column by column,
  then encoded for the insert (`SinkStage`'s Python work: in the worker it runs in the same
  process, off the trigger path but on the same core);
- chDB insert: ClickHouse parsing and writing them (C++ in this process, without the GIL: in the
  worker it runs in a thread beside the Python stages, so it does not add to their sum).

`rocksdb_us` is the RocksDB store's extra cost over the memory store (reads through its cache,
changelog drain, the acked write batch), measured apart: the full pipeline over the same
touchpoints once per store.

It also counts the Kafka records the worker produces per touchpoint (stitch messages, outputs,
changelog), which `bench/run.py` prices with the real producer on the embedded broker.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import orjson

from streams.config import Topics
from streams.eventtime.reorder import ReorderBuffer
from streams.ingest import SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.pipeline import STORES, Pipeline
from streams.state import BatchState
from streams.worker import sink_blocks
from streams.worker.outputs import TABLE_OF, journey_records, rows_of
from streams.worker.shell import chunk_json_lists
from streams.worker.tables import ROCKSDB_OPTIONS, RocksTableStore, TableStore

TOPICS = Topics()


def _topic(name: str) -> SimpleNamespace:
    return SimpleNamespace(get_topic_name=lambda: name)


def _stores() -> dict[str, TableStore]:
    """The worker's table stores over plain dicts (no Faust app needed to encode changelogs)."""
    return {name: TableStore(SimpleNamespace(data=SimpleNamespace(data={}),
                                             changelog_topic=_topic(name)))
            for name in STORES}


def _rocks_stores(root: Path) -> dict[str, RocksTableStore]:
    """The worker's RocksDB stores, each over a database opened with the worker's options by
    Faust's own opener (what `rocksdb://` tables open; no Faust app)."""
    from faust.stores.rocksdb import RocksDBOptions

    options = {k: v for k, v in ROCKSDB_OPTIONS.items() if k != "driver"}
    stores = {}
    for name in STORES:
        db = RocksDBOptions(use_rocksdict=True, **options).open(root / f"{name}.db")
        stores[name] = RocksTableStore(SimpleNamespace(data=SimpleNamespace(_dbs={0: db}),
                                                       changelog_topic=_topic(name)))
    return stores


class _TimedClient:
    """The ClickHouse client, with the time spent in its inserts (chDB's C++: outside the GIL)."""

    def __init__(self, client):
        self.client = client
        self.insert_s = 0.0
        self.inserts = 0

    def raw_insert(self, *args, **kwargs):
        started = time.perf_counter()
        self.inserts += 1
        try:
            return self.client.raw_insert(*args, **kwargs)
        finally:
            self.insert_s += time.perf_counter() - started

    def __getattr__(self, name):
        return getattr(self.client, name)


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def bench_stages(raws: list[bytes], batch: int = 2000) -> dict:
    """Microseconds per touchpoint of each stage over `raws`, stage by stage, batch by batch."""
    from sinks.clickhouse import close, connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink

    seconds = dict.fromkeys(("ingest", "stitch", "core", "moments", "changelog", "outputs",
                             "sink", "chdb"), 0.0)
    pack = load_default()
    empty = RulePack(rules=(), preferences=pack.preferences)
    bare_stores, full_stores = _stores(), _stores()
    bare, full = Pipeline(bare_stores, rules=empty), Pipeline(full_stores, rules=pack)
    n = produced = 0
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'ch'}")
        try:
            migrate(client)
            timed = _TimedClient(client)
            sink = ClickHouseSink(timed)
            for i in range(0, len(raws), batch):
                records = [(r, TOPICS.touchpoints, 0, i + j)
                           for j, r in enumerate(raws[i:i + batch])]
                s, (good, _dead) = _timed(lambda: ingest_batch(records, source_key=SOURCE))
                seconds["ingest"] += s
                n += len(good)
                s, (chunks, items) = _timed(lambda: (chunks := chunk_json_lists(good), [
                    tp for chunk in chunks for tp in orjson.loads(chunk)]))
                seconds["stitch"] += s
                copies = [dict(tp) for tp in items]
                s_bare, _ = _timed(lambda: bare.process(copies, flush=False))
                bare.flush()
                for store in bare_stores.values():
                    store.drain()
                s_full, out = _timed(lambda: full.process(items, flush=False))
                seconds["core"] += s_bare
                seconds["moments"] += s_full - s_bare  # signed: noise cancels over the batches
                s, changes = _timed(lambda: (full.flush(),
                                             [store.drain() for store in full_stores.values()]))
                seconds["changelog"] += s
                now_ms = int(time.time() * 1000)
                s, (messages, blocks) = _timed(lambda: journey_records(out, TOPICS, now_ms))
                seconds["outputs"] += s
                produced += len(messages) + len(blocks) + sum(map(len, changes[1])) + len(chunks)

                def sink_stage():
                    for _topic, _key, value in blocks:
                        block = sink_blocks.decode(value)
                        kind = block["kind"]
                        sink.write(TABLE_OF[kind], rows_of(kind, block["items"], block["now"]))
                    sink.flush()
                before = timed.insert_s
                s, _ = _timed(sink_stage)
                seconds["chdb"] += timed.insert_s - before
                seconds["sink"] += s - (timed.insert_s - before)
        finally:
            close(client)
    return {"events": n, "batch": batch, "records_per_event": produced / n,
            "inserts": timed.inserts,
            "us_per_event": {k: max(0.0, v) / n * 1e6 for k, v in seconds.items()},
            "reorder_us": _reorder_us(raws, batch), "rocksdb_us": _rocksdb_extra_us(raws, batch)}


def _rocksdb_extra_us(raws: list[bytes], batch: int) -> float:
    """Microseconds per touchpoint the RocksDB store adds to the journey over the memory store:
    the full pipeline, its flush, the changelog drain and (RocksDB) the acked write batch, once
    per store over the same touchpoints."""
    batches = []
    for i in range(0, len(raws), batch):
        good, _dead = ingest_batch([(r, TOPICS.touchpoints, 0, i + j)
                                    for j, r in enumerate(raws[i:i + batch])], source_key=SOURCE)
        batches.append(good)
    pack = load_default()

    def run(stores) -> float:
        pipeline = Pipeline(stores, rules=pack)
        started = time.perf_counter()
        for good in batches:
            pipeline.process([dict(tp) for tp in good], flush=False)
            pipeline.flush()
            for store in stores.values():
                store.acked(len(store.drain()))
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory() as tmp:
        memory_s, rocks_s = run(_stores()), run(_rocks_stores(Path(tmp)))
    return (rocks_s - memory_s) / max(1, sum(map(len, batches))) * 1e6


def _reorder_us(raws: list[bytes], batch: int) -> float:
    """The event-time order alone (inside the journey stage): each touchpoint held, then released
    in (event time, event id) order once a later one has come, the held ones written per batch."""
    good, _dead = ingest_batch([(r, TOPICS.touchpoints, 0, j) for j, r in enumerate(raws)])
    state = BatchState({})
    buffer = ReorderBuffer(state)
    started = time.perf_counter()
    for i in range(0, len(good), batch):
        for j, tp in enumerate(good[i:i + batch], start=i):
            buffer.add(tp, "0", j)
            for _ in buffer.release(tp["event_time"]):
                pass
        state.flush()
    return (time.perf_counter() - started) / max(1, len(good)) * 1e6
