"""Where a worker's time goes: the CPU cost of each stage per touchpoint, measured in-process.

The worker runs every stage of a touchpoint in one Python process (one core: the GIL) unless
several workers share the shards, so the sum of these costs bounds one process's throughput
whatever the broker and Faust do: 50,000 touchpoints/s needs the sum under 20 us. Each stage runs
alone over the same touchpoints, in the worker's batch size, in the order the worker runs them,
with the worker's own objects (streams/worker/app.py): a `Sequencer` and `SHARDS` `ShardCore`s
over the journals of the worker's two tables (streams/worker/tables.py, journal.py), the table
partitions stood in for by plain namespaces (no Faust app):

- ingest: decode, validate and normalise the raw records (`ingest_batch`);
- stitch hop: the stitch topic's messages encoded (`chunk_json_lists`) and decoded by the
  sequencer's shell;
- sequencer: event time, identity, placement (`Sequencer.process`, as `SequencerShell` calls it);
- journey hop: the sequencer's items encoded per shard for `parcours.journey`, the shards'
  transfers for `parcours.transfer`, and both decoded by the shard shell; a transfer reaches its
  shard with the next batch, as through Kafka;
- shard cores without rules: attribution, hand-offs, parking (`ShardCore.transfer` + `process`
  of every shard with an empty rule pack, over the same items);
- moments + preference gate: the default pack's extra cost over the empty pack in the shards;
- state changelog: the cores' flush into their journal views and the framed changelog records
  (`Journal.drain`: ~abort, one record per key, ~commit) of the sequencer's partition and of
  every shard's (memory views);
- output records: the sequencer's and the shards' topic records and ClickHouse rows as
  sink-topic blocks (`journey_records`, as both shells call it);
- sink stage: the sink blocks decoded, their rows built, checked and buffered column by column,
  then encoded for the insert (`SinkStage`'s Python work: in the worker it runs in the same
  process, off the trigger path but on the same core);
- chDB insert: ClickHouse parsing and writing them (C++ in this process, without the GIL: in the
  worker it runs in a thread beside the Python stages, so it does not add to their sum); the wall
  time of its inserts.

Every other figure is CPU time of the bench's thread (`time.thread_time`), not wall time: the work
of the machine's other processes does not count (the broker, workers and tests that share its
cores), nor that of the threads RocksDB and chDB run beside the GIL.

`rocksdb_us` is the RocksDB views' extra cost over the memory views (reads through their cache
and the database, the changelog drain, the acked write batch with the persisted offset), measured
apart: the whole journey (sequencer and shards, default rules) over the same touchpoints twice per
store, in turn, the faster run of each counting; each table partition on its own database opened
with the worker's `ROCKSDB_OPTIONS` by Faust's own opener (what `rocksdb://` tables open). Its
changelog phase alone (flush, drain, ack) is reported for both stores (`journal_us`).

It also counts the Kafka records the worker produces per touchpoint (stitch, journey and transfer
messages, outputs, sink blocks, framed changelog records), which `print_stages` prices with the
real producer on the embedded broker. The baseline of the ratios is the plain aiokafka consumer
with orjson on the same touchpoints (measured in the same run: `bench/run.py`, or `main` here).
`python -m bench.stages [--events N]` runs this section alone, with its baseline.
"""
from __future__ import annotations

import dataclasses
import gc
import tempfile
import time
from pathlib import Path

import orjson

from bench.alone import run_alone
from bench.journey_harness import (
    SHARDS,
    Journey,
    State,
    cpu,
    decode_work,
    encode_items,
    send_transfers,
)
from streams.config import Topics
from streams.eventtime.reorder import ReorderBuffer
from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.moments.stage import References
from streams.pipeline import Emitted
from streams.shards.items import EVENT
from streams.state import BatchState
from streams.worker import sink_blocks
from streams.worker.outputs import TABLE_OF, journey_records, rows_of
from streams.worker.shell import chunk_json_lists

TOPICS = Topics()
INPUT = TOPICS.touchpoints
STAGES = ("ingest", "stitch", "sequencer", "journey", "core", "moments", "changelog", "outputs",
          "sink", "chdb")


class _TimedClient:
    """The ClickHouse client, with the time spent in its inserts (chDB's C++: outside the GIL):
    `insert_s` in wall time (chDB works in threads of its own too), `insert_cpu_s` the bench
    thread's CPU in them (taken out of the sink stage's figure)."""

    def __init__(self, client):
        self.client = client
        self.insert_s = self.insert_cpu_s = 0.0
        self.inserts = 0

    def raw_insert(self, *args, **kwargs):
        started, cpu_started = time.perf_counter(), cpu()
        self.inserts += 1
        try:
            return self.client.raw_insert(*args, **kwargs)
        finally:
            self.insert_s += time.perf_counter() - started
            self.insert_cpu_s += cpu() - cpu_started

    def __getattr__(self, name):
        return getattr(self.client, name)


def _timed(fn) -> tuple[float, object]:
    started = cpu()
    result = fn()
    return cpu() - started, result


def _own(sequenced) -> Emitted:
    """The sequencer's own records (what `SequencerShell` sends itself)."""
    return Emitted(identity=sequenced.identity, identity_map=sequenced.identity_map,
                   stitched=sequenced.stitched, late=sequenced.late)


def _shard_records(outs: dict, now_ms: int) -> tuple[list, list]:
    """`ShardShell.run`'s output records: the merged outputs, erasures after them."""
    merged = Emitted()
    erased = []
    for out in outs.values():
        merged.extend(out)
        erased.extend(out.erased)
    records, sink = journey_records(merged, TOPICS, now_ms)
    for request_id, profile_id, identifiers in erased:
        sink.append((TOPICS.sink, None, sink_blocks.erase(request_id, profile_id, identifiers)))
        records.append((TOPICS.stitched, profile_id.encode(), None))
    return records, sink


def bench_stages(raws: list[bytes], batch: int = 2000, shards: int = SHARDS) -> dict:
    """Microseconds per touchpoint of each stage over `raws`, stage by stage, batch by batch."""
    gc.collect()
    gc.freeze()  # what the caller holds is no worker's state: out of the collections timed here
    try:
        return _bench_stages(raws, batch, shards)
    finally:
        gc.unfreeze()


def _bench_stages(raws: list[bytes], batch: int, shards: int) -> dict:
    from sinks.clickhouse import close, connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink

    seconds = dict.fromkeys(STAGES, 0.0)
    pack = load_default()
    references = References.of(pack)
    empty = dataclasses.replace(pack, rules=())
    full = Journey(State("memory", shards), pack, references)
    bare = Journey(State("memory", shards), empty, references)
    shard_s = [0.0] * shards
    shard_events = [0] * shards
    n = produced = changelog_records = transfers = 0
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'ch'}")
        try:
            migrate(client)
            timed = _TimedClient(client)
            sink = ClickHouseSink(timed)
            for i in range(0, len(raws), batch):
                records = [(r, INPUT, 0, i + j) for j, r in enumerate(raws[i:i + batch])]
                s, (good, _dead) = _timed(lambda: ingest_batch(records, source_key=SOURCE,
                                                               offset_key=OFFSET))
                seconds["ingest"] += s
                n += len(good)
                s, (chunks, items) = _timed(lambda: (chunks := chunk_json_lists(good), [
                    tp for chunk in chunks for tp in orjson.loads(chunk)]))
                seconds["stitch"] += s
                bare_items = orjson.loads(orjson.dumps(items))  # its own objects, untimed
                s, sequenced = _timed(lambda: full.sequence(items, len(chunks)))
                seconds["sequencer"] += s
                bare_sequenced = bare.sequence(bare_items, len(chunks))
                s, (journey, work) = _timed(lambda: (journey := encode_items(sequenced),
                                                     decode_work(journey)))
                seconds["journey"] += s
                bare_work = decode_work(encode_items(bare_sequenced))
                for shard, shard_items in work.items():
                    shard_events[shard] += sum(1 for item in shard_items if item["k"] == EVENT)
                s_bare, bare_outs = _timed(lambda: bare.shard(bare_work))
                s_full, outs = _timed(lambda: full.shard(work, shard_s))
                seconds["core"] += s_bare
                seconds["moments"] += s_full - s_bare  # signed: noise cancels over the batches
                s, handed = _timed(lambda: send_transfers(outs, full))
                seconds["journey"] += s
                transfers += sum(len(out.transfers) for out in outs.values())
                send_transfers(bare_outs, bare)
                now_ms = int(time.time() * 1000)

                def outputs():
                    own, own_sink = journey_records(_own(sequenced), TOPICS, now_ms)
                    shard_records, shard_sink = _shard_records(outs, now_ms)
                    return own + shard_records, own_sink + shard_sink
                s, (messages, blocks) = _timed(outputs)
                seconds["outputs"] += s
                s, drained = _timed(lambda: full.changelog(outs))
                seconds["changelog"] += s
                bare.changelog(bare_outs)
                framed = sum(map(len, drained))
                changelog_records += framed
                produced += (len(chunks) + sum(map(len, journey.values())) + len(handed)
                             + len(messages) + len(blocks) + framed)

                def sink_stage():
                    for _topic, _key, value in blocks:
                        block = sink_blocks.decode(value)
                        kind = block["kind"]
                        if kind == sink_blocks.ERASE:
                            continue  # the bench's input erases nobody
                        sink.write(TABLE_OF[kind], rows_of(kind, block["items"], block["now"]))
                    sink.flush()
                before, cpu_before = timed.insert_s, timed.insert_cpu_s
                s, _ = _timed(sink_stage)
                seconds["chdb"] += timed.insert_s - before
                seconds["sink"] += s - (timed.insert_cpu_s - cpu_before)
        finally:
            close(client)
    full = bare = None  # noqa: F841 - their state out of the collections of the runs below
    gc.collect()
    rocks = _rocksdb_extra(raws, batch, shards)
    return {"events": n, "batch": batch, "shards": shards, "records_per_event": produced / n,
            "changelog_records_per_event": changelog_records / n,
            "transfers": transfers, "inserts": timed.inserts,
            "us_per_event": {k: max(0.0, v) / n * 1e6 for k, v in seconds.items()},
            "shard_events": shard_events,
            "shard_us": [s / max(1, e) * 1e6 for s, e in zip(shard_s, shard_events)],
            "reorder_us": _reorder_us(raws, batch), "rocksdb_us": rocks["extra_us"],
            "journal_us": rocks["journal_us"], "journey_us": rocks["journey_us"],
            "rocksdb_runs": rocks["runs"]}


def _rocksdb_extra(raws: list[bytes], batch: int, shards: int, runs: int = 2) -> dict:
    """Microseconds per touchpoint of the whole journey (sequencer, shards, flush, framed drain
    and, on RocksDB, the acked write batch) per store, the changelog phase alone per store, and
    what RocksDB adds over memory. Each store's journey runs `runs` times over the same batches,
    memory and RocksDB in turn (memory, RocksDB, RocksDB, memory...); the fastest run of each
    counts (the other processes on the machine only ever slow a run down)."""
    batches = []
    for i in range(0, len(raws), batch):
        good, _dead = ingest_batch([(r, INPUT, 0, i + j) for j, r in enumerate(raws[i:i + batch])],
                                   source_key=SOURCE, offset_key=OFFSET)
        batches.append(orjson.dumps(good))
    n = sum(len(orjson.loads(chunk)) for chunk in batches)
    pack = load_default()
    references = References.of(pack)

    def run(state: State) -> tuple[float, float]:
        journey = Journey(state, pack, references)
        total = journal = 0.0
        for chunk in batches:
            items = orjson.loads(chunk)  # decoded afresh each run, outside the timing
            started = cpu()
            work = decode_work(encode_items(journey.sequence(items, 1)))
            outs = journey.shard(work)
            send_transfers(outs, journey)
            flushed = cpu()
            state.acked(journey.changelog(outs))
            done = cpu()
            total += done - started
            journal += done - flushed
        return total, journal

    def rocksdb_run() -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            state = State("rocksdb", shards, Path(tmp))
            try:
                return run(state)
            finally:
                state.close()

    timings: dict[str, list] = {"memory": [], "rocksdb": []}
    for i in range(runs):
        order = ("memory", "rocksdb") if i % 2 == 0 else ("rocksdb", "memory")
        for kind in order:
            gc.collect()
            timings[kind].append(run(State("memory", shards)) if kind == "memory"
                                 else rocksdb_run())
    memory, rocksdb = min(timings["memory"]), min(timings["rocksdb"])
    per = 1e6 / max(1, n)
    return {"extra_us": (rocksdb[0] - memory[0]) * per,
            "journey_us": {"memory": memory[0] * per, "rocksdb": rocksdb[0] * per},
            "journal_us": {"memory": memory[1] * per, "rocksdb": rocksdb[1] * per},
            "runs": runs}


def _reorder_us(raws: list[bytes], batch: int) -> float:
    """The event-time order alone (inside the sequencer): each touchpoint held, then released in
    (event time, event id) order once a later one has come, the held ones written per batch."""
    good, _dead = ingest_batch([(r, INPUT, 0, j) for j, r in enumerate(raws)])
    state = BatchState({})
    buffer = ReorderBuffer(state)
    started = cpu()
    for i in range(0, len(good), batch):
        for j, tp in enumerate(good[i:i + batch], start=i):
            buffer.add(tp, "0", j)
            for _ in buffer.release(tp["event_time"]):
                pass
        state.flush()
    return (cpu() - started) / max(1, len(good)) * 1e6


LABELS = {"kafka": "Kafka consume + orjson decode (the baseline's whole cost)",
          "produce": "Kafka produce: {records:.2f} records per touchpoint",
          "ingest": "ingest: decode, validate, normalise, hash",
          "stitch": "stitch hop: encode + decode",
          "sequencer": "sequencer: event time, identity, placement",
          "journey": "journey hop: items + transfers, encode + decode",
          "core": "shard cores ({shards}): attribution, hand-offs, parking",
          "moments": "moments + preferences gate ({rules} rules)",
          "changelog": "state flush + framed changelog records (memory views)",
          "outputs": "output topic records + sink-topic blocks",
          "sink": "sink stage: decode blocks, build, check, encode rows",
          "rocksdb": "state on RocksDB (the default): extra over the memory views"}


def costs_of(st: dict, kafka_us: float, produce_us: float) -> dict[str, float]:
    """Microseconds per touchpoint of every Python stage, the Kafka client's included:
    `kafka_us` (the baseline: consume + orjson per record) and `produce_us` (the batched producer
    per record, priced here by the records the worker produces per touchpoint)."""
    per_event = {k: v for k, v in st["us_per_event"].items() if k != "chdb"}
    return {"kafka": kafka_us, "produce": produce_us * st["records_per_event"], **per_event,
            "rocksdb": st["rocksdb_us"]}


def print_stages(console, st: dict, kafka_us: float, produce_us: float) -> dict[str, float]:
    """The section bench/run.py prints; returns the costs (`costs_of`) and their sum."""
    from rich.table import Table

    costs = costs_of(st, kafka_us, produce_us)
    total = sum(costs.values())
    chdb_us = st["us_per_event"]["chdb"]
    labels = {k: v.format(records=st["records_per_event"], shards=st["shards"],
                          rules=len(load_default().rules)) for k, v in LABELS.items()}
    table = Table(title=f"where a worker's time goes, {st['events']:,} touchpoints in batches of "
                        f"{st['batch']:,} (the Python stages share one core: they add up)")
    for col in ("stage", "us per touchpoint", "share", "ratio vs Kafka consume",
                "this stage alone, events/s"):
        table.add_column(col, justify="right" if col != "stage" else "left")
    for key, us in costs.items():
        table.add_row(labels[key], f"{us:,.1f}", f"{us / total:.0%}", f"{us / kafka_us:.2f}",
                      f"{1e6 / us:,.0f}" if us > 0 else "")
    table.add_row("sum: the ceiling of one Python process", f"{total:,.1f}", "100%",
                  f"{total / kafka_us:.2f}", f"{1e6 / total:,.0f}")
    table.add_row(f"(beside it: chDB insert, C++ without the GIL, "
                  f"{st['inserts'] / (st['events'] / st['batch']):.1f} "
                  "inserts per batch)", f"{chdb_us:,.1f}", "", f"{chdb_us / kafka_us:.2f}",
                  f"{1e6 / chdb_us:,.0f}" if chdb_us > 0 else "")
    console.print(table)
    console.print(f"of which event-time order (hold each touchpoint, release it in order; in the "
                  f"sequencer row): {st['reorder_us']:,.1f} us per touchpoint")
    shards = ", ".join(f"shard {i} {us:,.1f} us ({events:,})"
                       for i, (us, events) in enumerate(zip(st["shard_us"], st["shard_events"])))
    console.print(f"shard cores with the default rules, CPU per touchpoint of their own: {shards} "
                  f"(the collector's pauses count where they fall); {st['transfers']:,} "
                  "transfers between shards")
    journal, journey = st["journal_us"], st["journey_us"]
    console.print(f"journal (flush, ~abort..~commit drain, ack), per touchpoint: memory "
                  f"{journal['memory']:,.1f} us, RocksDB {journal['rocksdb']:,.1f} us; "
                  f"{st['changelog_records_per_event']:.2f} changelog records per touchpoint; "
                  f"the whole journey: memory {journey['memory']:,.1f} us, RocksDB "
                  f"{journey['rocksdb']:,.1f} us (the faster of {st['rocksdb_runs']} runs each)")
    return {**costs, "sum": total, "chdb_insert_beside": chdb_us,
            "reorder_in_sequencer": st["reorder_us"]}


def _alone(console, raws: list[bytes]) -> tuple[dict, float, float]:
    """This section with its baseline: the Kafka consume and produce costs on the broker."""
    import asyncio

    from bench.kafka import bench_aiokafka, produce, produce_batches
    from streams.embedded.broker import EmbeddedKafka

    console.print(f"the baseline: {len(raws):,} touchpoints through the embedded broker...")
    with EmbeddedKafka() as kafka:
        kafka.create_topics({TOPICS.touchpoints: 4, "bench.outputs": 1})
        asyncio.run(produce(kafka.bootstrap, raws))
        raw_s = asyncio.run(bench_aiokafka(kafka.bootstrap, len(raws)))
        produce_s = asyncio.run(produce_batches(kafka.bootstrap, raws))
    console.print("CPU per touchpoint, stage by stage (pure core and chDB, no broker)...")
    return bench_stages(raws), raw_s / len(raws) * 1e6, produce_s / len(raws) * 1e6


def main() -> None:
    run_alone(__doc__, _alone, lambda console, r: print_stages(console, *r))


if __name__ == "__main__":
    main()
