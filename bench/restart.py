"""Restart to first output with 25k, 100k and 1M profiles of state: memory store against RocksDB.

`bench_restart()` (called by bench/run.py) measures, for each state size and store, the time from a
worker's process start to its first output record (on `touchpoints.stitched`) for a touchpoint
produced after that start, the worker's RSS at that moment (RSS per profile: above the same restart
with no state), and `bench_access()` (bench/store_access.py) the CPU cost of one get / set through
each store's journal view (streams/worker/journal.py: `MemoryView`, `RocksView`).

The worker's state is two tables (streams/worker/tables.py): `sequencer-state` (1 partition: the
sequencer's identity, placement, held events, clock) and `shard-state` (`SHARDS` partitions: each
shard's paths, moments, preferences, timers, identifier types), every core store under its key
prefix (`CODES`), each partition's changelog written in framed runs (~abort ... ~commit).

How the state is built (building 1M profiles through a worker, ~9k touchpoints/s, would take ten
minutes):
- a base state: the sequencer and `SHARDS` shard cores (`LocalShards`, as the worker places
  profiles) over a synthetic population (`BENCH_RESTART_BASE`, default 12,500 people, ~14k
  profiles): the records a worker would write to each table partition's changelog;
- N profiles: copies of the base records of every per-profile store (all but the held events and
  the clocks) under suffixed keys (`key~3`), each in its own table partition: real record sizes
  and shapes; references between copies are not rewritten (only the restart is measured; the
  probe touchpoint is a new person, dated before every timer, so no copied record is processed).
- memory store: the records are produced to the tables' changelog partitions in the worker's
  format (JSON key with its store's prefix, JSON value), in framed runs of `FRAME` records; the
  timed worker recovers all of them, as a memory worker does at every start.
- RocksDB: the records are written to the tables' local RocksDB databases, one per table partition,
  opened with the worker's `ROCKSDB_OPTIONS` (what Faust's recovery would have written there: the
  changelog's bytes; closed as a kill -9 leaves them, WAL and all), then `BENCH_RESTART_TAIL`
  (2,000) changelog records are produced after them on the sequencer's partition, framed (written
  while the worker was down), and the timed worker starts on that data dir: it reads only the
  tail. That a real worker killed with SIGKILL resumes this way (persisted offset = its last
  acked changelog record) is what tests/e2e/test_rocksdb_restart.py proves.
The probe is followed by a later touchpoint of another new person (past the allowed lateness),
so the sequencer releases the probe at once instead of after an idle report of the input
partition: the figure is the restart, not `PARCOURS_IDLE_SECONDS`.
The timed start is a process start in a group without a dead member: a kill -9 also leaves the
dead member in its groups until its session expires (PARCOURS_SESSION_TIMEOUT), the same wait for
either store, left out here so that the figures compare the stores.
Memory at sizes above `BENCH_RESTART_MEMORY_MAX` (25,000) is extrapolated from the measured size
(recovery time and RSS grow linearly with the records): marked "extrapolated".
`python -m bench.restart [--sizes 25000,100000]` runs this section alone.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson

from bench.kafka import metric_sum, proc_status_mb
from bench.restart_state import (
    SHARDS,
    START,
    TOPICS,
    base_state,
    changelog_topic,
    copies,
    db_paths,
    earliest_timer,
    framed,
    produce,
    profile_count,
    write_rocksdb,
)
from bench.store_access import bench_access
from streams.embedded.broker import EmbeddedKafka, free_port
from streams.embedded.worker_process import WorkerProcess
from streams.kafka.clients import KafkaClients
from streams.moments.rules.loader import load_default
from streams.worker.journal import CODES


def _probe(tag: str, lateness_ms: int) -> tuple[str, list[bytes]]:
    """A touchpoint of a new person, and a later one of another (past the allowed lateness: the
    sequencer releases the probe when it reads it)."""
    event_id = f"probe-{tag}-{uuid.uuid4().hex[:8]}"
    at = START + timedelta(hours=1)
    events = [{"event_id": eid, "event_time": t.isoformat(), "type": "page_view", "channel": "web",
               "ids": {"cookie": f"c-{eid}"}, "context": {"url": "https://brand.example/"},
               "properties": {}}
              for eid, t in ((event_id, at),
                             (f"{event_id}-next", at + timedelta(milliseconds=lateness_ms + 1000)))]
    return event_id, [orjson.dumps(e) for e in events]


async def _first_output(bootstrap: str, event_id: str, start_offset: int, alive,
                        timeout: float) -> None:
    from aiokafka import TopicPartition

    tp = TopicPartition(TOPICS.stitched, 0)
    consumer = KafkaClients.at(bootstrap).consumer(group_id=None, enable_auto_commit=False,
                                                   fetch_max_wait_ms=20)
    await consumer.start()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start_offset)
        needle = event_id.encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=100)).values():
                if any(needle in (r.value or b"") for r in records):
                    return
            if not alive():
                raise RuntimeError("the worker stopped before its first output")
        raise TimeoutError(f"no output for {event_id} after {timeout:.0f} s")
    finally:
        await consumer.stop()


def _stitched_end(bootstrap: str) -> int:
    from aiokafka import TopicPartition

    from streams.kafka.patches import true_end_offsets

    tp = TopicPartition(TOPICS.stitched, 0)
    return asyncio.run(true_end_offsets(bootstrap, [tp]))[tp]


class _Scenario:
    def __init__(self, kafka: EmbeddedKafka, root: Path, store: str, app_id: str):
        self.kafka, self.root, self.store, self.app_id = kafka, root, store, app_id
        self.data = root / "data"
        self.runs = 0

    def worker(self) -> tuple[WorkerProcess, int]:
        self.runs += 1
        port = free_port()
        return WorkerProcess(self.kafka.url, f"chdb://{self.root / 'ch'}", self.data,
                             app_id=self.app_id, log_path=self.root / f"worker-{self.runs}.log",
                             metrics_port=port,
                             extra_env={"PARCOURS_STORE": self.store,
                                        "PARCOURS_INPUT_PARTITIONS": "1",
                                        "PARCOURS_JOURNEY_PARTITIONS": str(SHARDS)}), port

    def run_until_output(self, timeout: float = 600) -> dict:
        """Start a worker, produce a probe touchpoint at once, time its first output."""
        end = _stitched_end(self.kafka.bootstrap)
        worker, port = self.worker()
        event_id, raws = _probe(f"{self.store}-{self.runs}", load_default().lateness_ms)
        started = time.monotonic()
        worker.start()
        try:
            asyncio.run(produce(self.kafka.bootstrap,
                                 [(TOPICS.touchpoints, None, raw, 0) for raw in raws]))
            asyncio.run(_first_output(self.kafka.bootstrap, event_id, end, worker.alive, timeout))
            seconds = time.monotonic() - started
            return {"seconds": seconds, "rss_mb": proc_status_mb(worker.pid, "VmRSS"),
                    "recovered": metric_sum(port, "parcours_changelog_recovered_total{"),
                    "worker": worker}
        except (TimeoutError, RuntimeError) as exc:
            worker.kill()
            raise RuntimeError(f"{exc}\n{worker.log_tail(30)}") from None
        except BaseException:
            worker.kill()
            raise


def _topics(kafka: EmbeddedKafka, app_id: str) -> None:
    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.stitch: 1, TOPICS.stitched: 1,
                         TOPICS.journey: SHARDS, TOPICS.transfer: SHARDS,
                         changelog_topic(app_id, "sequencer"): 1,
                         changelog_topic(app_id, "shards"): SHARDS})


def restart_memory(base, n: int, root: Path) -> dict:
    app_id = "restart-memory"
    with EmbeddedKafka() as kafka:
        _topics(kafka, app_id)
        records = (record for (table, p), recs in base.items()
                   for record in framed(changelog_topic(app_id, table), p, copies(recs, n)))
        produced = asyncio.run(produce(kafka.bootstrap, records))
        scenario = _Scenario(kafka, root, "memory", app_id)
        result = scenario.run_until_output()
        result.pop("worker").kill()
    return {**result, "changelog_records": produced}


def restart_rocksdb(base, n: int, root: Path, tail: int) -> dict:
    app_id = "restart-rocksdb"
    with EmbeddedKafka() as kafka:
        _topics(kafka, app_id)
        started = time.perf_counter()
        written = write_rocksdb(db_paths(root / "data", app_id), base, n) if n else 0
        build_s = time.perf_counter() - started
        scenario = _Scenario(kafka, root, "rocksdb", app_id)
        # changelog records written after the local state (while the worker was down): profile
        # records on the sequencer's partition, framed
        prefix = b'"%s/' % CODES["profiles"].encode()
        profiles = [(key, value) for key, value in base[("sequencer", 0)]
                    if key.startswith(prefix)]
        extra = itertools.islice(((key[:-1] + b'~tail"', value)
                                  for key, value in itertools.cycle(profiles)), tail)
        asyncio.run(produce(kafka.bootstrap,
                             framed(changelog_topic(app_id, "sequencer"), 0, extra)))
        result = scenario.run_until_output()
        result.pop("worker").kill()
    return {**result, "local_records": written, "build_s": build_s, "tail": tail}


def bench_restart(sizes=(25_000, 100_000, 1_000_000)) -> dict:
    """The restart figures (see the module docstring), with the no-state restart as baseline."""
    people = int(os.environ.get("BENCH_RESTART_BASE", "12500"))
    memory_max = int(os.environ.get("BENCH_RESTART_MEMORY_MAX", "25000"))
    tail = int(os.environ.get("BENCH_RESTART_TAIL", "2000"))
    sizes = tuple(int(s) for s in os.environ.get("BENCH_RESTART_SIZES", "").split(",")
                  if s.strip()) or sizes
    started = time.perf_counter()
    access = bench_access()  # first: the base state below is no worker's, out of its collections
    built = time.perf_counter()
    base = base_state(people)
    base_profiles = profile_count(base)
    earliest = earliest_timer(base)
    probe_ms = int((START + timedelta(hours=1)).timestamp() * 1000)
    if earliest is not None and earliest <= probe_ms + 1000:  # the watermark the probe leaves
        raise RuntimeError(f"a copied timer is due at {earliest}, before the probe's watermark "
                           f"{probe_ms + 1000}: the restart would process copied state")
    out: dict = {"base_people": people, "base_profiles": base_profiles,
                 "base_records": sum(map(len, base.values())),
                 "base_records_per_partition": {f"{t}-{p}": len(recs)
                                                for (t, p), recs in base.items()},
                 "build_base_s": time.perf_counter() - built, "access": access,
                 "rows": []}
    with tempfile.TemporaryDirectory(prefix="parcours-restart-") as tmp:
        root = Path(tmp)
        none = restart_rocksdb(base, 0, root / "none", 0)
        out["no_state"] = {k: none[k] for k in ("seconds", "rss_mb")}
        measured_memory = None
        for size in sizes:
            n = max(1, round(size / base_profiles))
            profiles = n * base_profiles
            row = {"profiles": profiles, "copies": n}
            if size <= memory_max:
                memory = restart_memory(base, n, root / f"memory-{size}")
                row["memory"] = {**{k: memory[k] for k in ("seconds", "rss_mb", "recovered",
                                                          "changelog_records")},
                                 "extrapolated": False}
                measured_memory = (profiles, memory)
            elif measured_memory is not None:
                m_profiles, m = measured_memory
                factor = profiles / m_profiles
                row["memory"] = {
                    "seconds": none["seconds"] + (m["seconds"] - none["seconds"]) * factor,
                    "rss_mb": none["rss_mb"] + (m["rss_mb"] - none["rss_mb"]) * factor,
                    "recovered": (m["recovered"] or 0) * factor, "extrapolated": True}
            rocks = restart_rocksdb(base, n, root / f"rocksdb-{size}", tail)
            row["rocksdb"] = {k: rocks[k] for k in ("seconds", "rss_mb", "recovered",
                                                    "local_records", "build_s", "tail")}
            out["rows"].append(row)
            shutil.rmtree(root / f"rocksdb-{size}", ignore_errors=True)
            shutil.rmtree(root / f"memory-{size}", ignore_errors=True)
    for row in out["rows"]:
        for store in ("memory", "rocksdb"):
            if store in row:
                r = row[store]
                r["rss_bytes_per_profile"] = ((r["rss_mb"] - out["no_state"]["rss_mb"]) * 2**20
                                              / row["profiles"])
                r["over_no_state_s"] = r["seconds"] - out["no_state"]["seconds"]
    out["wall_s"] = time.perf_counter() - started
    return out


def print_restart(console, r: dict) -> None:
    """The section bench/run.py prints."""
    from rich.table import Table

    acc = r["access"]
    console.print(f"store access, us of CPU per operation: memory get "
                  f"{acc['memory_get_hit_us']:.2f}, set (+ drain) {acc['memory_set_us']:.2f}; "
                  f"rocksdb get (cached) {acc['rocksdb_get_hit_us']:.2f}, get (not cached: "
                  f"RocksDB + decode) {acc['rocksdb_get_miss_us']:.2f}, set (+ drain, ack) "
                  f"{acc['rocksdb_set_us']:.2f}")
    table = Table(title=f"restart: process start to the first output of a new touchpoint "
                        f"(no state: {r['no_state']['seconds']:.1f} s, "
                        f"{r['no_state']['rss_mb']:,.0f} MB RSS)")
    for col in ("profiles", "store", "restart to first output", "over no state",
                "changelog records read", "RSS", "RSS per profile"):
        table.add_column(col, justify="right" if col != "store" else "left")
    for row in r["rows"]:
        for store in ("memory", "rocksdb"):
            s = row.get(store)
            if s is None:
                continue
            mark = " (extrapolated)" if s.get("extrapolated") else ""
            table.add_row(f"{row['profiles']:,}", store + mark, f"{s['seconds']:.1f} s",
                          f"{s['over_no_state_s']:+.1f} s", f"{s['recovered'] or 0:,.0f}",
                          f"{s['rss_mb']:,.0f} MB", f"{s['rss_bytes_per_profile']:,.0f} B")
    console.print(table)
    console.print(f"state: {r['base_profiles']:,} profiles of a {r['base_people']:,}-person "
                  f"population ({r['base_records']:,} records) copied under new keys; RocksDB "
                  f"restarts read a tail of {r['rows'][0]['rocksdb']['tail']:,} changelog records; "
                  f"the bench took {r['wall_s']:.0f} s")
    parts = r["base_records_per_partition"]
    console.print("base records per table partition: " + ", ".join(
        f"{name} {n:,}" for name, n in parts.items()))


def main() -> None:
    from rich.console import Console

    from streams.worker import gc_tuning

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25000,100000,1000000",
                        help="profiles of state, comma-separated (default: %(default)s)")
    args = parser.parse_args()
    gc_tuning.tune()  # the collector settings of `parcours worker` (and of bench/run.py)
    console = Console(width=130)
    result = bench_restart(tuple(int(s) for s in args.sizes.split(",") if s.strip()))
    print_restart(console, result)


if __name__ == "__main__":
    main()
