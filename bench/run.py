"""`make bench`: throughput and memory, with baselines measured in the same run.

What it measures, on the same synthetic touchpoints (N = BENCH_EVENTS, default 100,000):
1. baseline  `aiokafka raw`: a plain aiokafka consumer reading the touchpoints topic and decoding
   each record with orjson (the floor any Kafka consumer in Python pays);
1b. `faust floor`: a Faust agent on the same topic that only batches and counts (what Faust itself
   costs per record, before any work);
2. `replay core`: `ingest_batch` + `Pipeline.process` in-process, no broker (the pure core's
   ceiling); then `parcours replay` itself over the same touchpoints as a JSON-lines file: to its
   output files, and to its output files and chDB (the command's default);
3. `parcours worker`: the real worker process reading the same pre-filled topic, through ingest (its
   own aiokafka consumer), the single-partition stitch topic and the journey agent (Faust), into
   chDB; timed from its first output record to its last (start-up and group join excluded,
   reported separately);
4. where the worker's time goes: each stage alone over the same touchpoints (bench/stages.py), in
   microseconds of CPU per touchpoint; their sum bounds what one worker process can do.
4b. the sharded journey (bench/shards.py): the sequencer and each of 4 shard cores alone, in
   microseconds of CPU per touchpoint against `Pipeline` over the same touchpoints, their modelled
   ceilings, and the cross-shard merges, transfers and parked touchpoints of `LocalShards(4)`.
4c. the worker with one process against two in one group (bench/workers.py): touchpoints/s on
   the embedded broker, 4 input partitions, 4 shards, over `--workers-events` touchpoints (default
   BENCH_WORKERS_EVENTS, else 100,000) after a warm-up; the ratio is against one process.
Ratios are against (1). Peak memory: the worker's VmHWM, and the replay's max RSS. Every figure is
also written as JSON to BENCH_RESULTS (default bench/results.json), so runs can be compared.
Then the moment rules and produce-to-trigger latency (bench/moments.py), conversion -> credit lag
(bench/credit.py), sink lag during a throttled-insert run (bench/sink_lag.py), attribution at 1M
conversions and 1M closed paths (bench/attribution.py), the identity graph alone at
BENCH_IDENTIFIERS (default 1M) identifiers (bench/identity.py), and the preference centre's
requests, the schema registry's read path and Avro outputs (bench/centre.py).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from rich.console import Console
from rich.table import Table

from bench.attribution import bench_datadriven, bench_heuristics
from bench.centre import bench_centre
from bench.centre import report as centre_report
from bench.clickhouse import bench as bench_clickhouse
from bench.clickhouse import report as clickhouse_report
from bench.credit import bench_credit_lag
from bench.identity import bench as bench_identity
from bench.kafka import (
    bench_aiokafka,
    bench_faust_floor,
    cpu_seconds,
    produce,
    produce_batches,
    vm_hwm_mb,
    watch_outputs,
)
from bench.moments import bench_latency, bench_rules
from bench.restart import bench_restart, print_restart
from bench.shards import bench_shards, print_shards
from bench.sink_lag import bench_sink_lag, print_sink_lag
from bench.sink_lag import durations as sink_lag_durations
from bench.stages import bench_stages, print_stages
from bench.traits import bench_traits
from bench.traits import report as traits_report
from bench.workers import EVENTS as WORKERS_EVENTS
from bench.workers import WARMUP as WORKERS_WARMUP
from bench.workers import bench_workers, print_workers
from streams import simulate
from streams.config import Topics
from streams.embedded.broker import EmbeddedKafka
from streams.embedded.worker_process import WorkerProcess
from streams.ingest.normalise import ingest_batch
from streams.pipeline import Pipeline
from streams.worker import gc_tuning

START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()


def make_event_dicts(n: int) -> list[dict]:
    """`n` synthetic touchpoints in time order (populations one after the other, never
    overlapping)."""
    events: list[dict] = []
    profiles = max(10, n // 12)
    start = START
    while len(events) < n:
        population = list(simulate.Population(profiles=profiles, seed=len(events) + 1,
                                              start=start).events())
        events.extend(population)
        start = datetime.fromtimestamp(simulate.event_ms(population[-1]) / 1000 + 3600,
                                       timezone.utc)
    return events[:n]


def make_events(n: int) -> list[bytes]:
    return [orjson.dumps(e) for e in make_event_dicts(n)]


def bench_core(raws: list[bytes], batch: int = 5000) -> float:
    pipeline = Pipeline()
    started = time.perf_counter()
    for i in range(0, len(raws), batch):
        good, _dead = ingest_batch([(r, "bench", 0, i + j)
                                    for j, r in enumerate(raws[i:i + batch])])
        pipeline.process(good)
    return time.perf_counter() - started


def bench_replay(raws: list[bytes], tmp: Path) -> dict[str, float]:
    """Seconds of `parcours replay` (streams.cli.replay.replay, as the command calls it) over the
    same touchpoints written as a JSON-lines file: outputs to files only, then also into chDB."""
    from sinks.clickhouse import close, connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink
    from streams.cli.replay import replay

    path = tmp / "replay-input.jsonl"
    path.write_bytes(b"\n".join(raws) + b"\n")
    seconds = {"files": replay(path, tmp / "replay-out").seconds}
    client = connect(f"chdb://{tmp / 'replay-ch'}")
    try:
        migrate(client)
        sink = ClickHouseSink(client)
        seconds["chdb"] = replay(path, tmp / "replay-out-ch", sink=sink).seconds
        sink.close()
    finally:
        close(client)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "100000")),
                        help="touchpoints of the throughput and stage sections (BENCH_EVENTS, "
                             "default %(default)s)")
    parser.add_argument("--workers-events", type=int,
                        default=int(os.environ.get("BENCH_WORKERS_EVENTS", WORKERS_EVENTS)),
                        help="touchpoints of the one-vs-two-workers section (bench/workers.py; "
                             "BENCH_WORKERS_EVENTS, default %(default)s)")
    args = parser.parse_args()
    gc_tuning.tune()  # the collector settings of `parcours worker` and `parcours replay`
    n = args.events
    console = Console(width=130)
    console.print(f"generating {n:,} synthetic touchpoints...")
    started = time.perf_counter()
    raws = make_events(n)
    generate_s = time.perf_counter() - started

    core_s = bench_core(raws)
    core_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        replay_s = bench_replay(raws, Path(tmp))

    with tempfile.TemporaryDirectory() as tmp, EmbeddedKafka() as kafka:
        kafka.create_topics({TOPICS.touchpoints: 4, TOPICS.stitch: 1, "bench.outputs": 1})
        produce_s = asyncio.run(produce(kafka.bootstrap, raws))
        raw_s = asyncio.run(bench_aiokafka(kafka.bootstrap, n))
        floor_rate = bench_faust_floor(kafka.url, n, Path(tmp))
        produce_batch_s = asyncio.run(produce_batches(kafka.bootstrap, raws))
        worker = WorkerProcess(kafka.url, f"chdb://{Path(tmp) / 'ch'}", Path(tmp) / "data",
                               app_id="parcours-bench", log_path=Path(tmp) / "worker.log")
        with worker:
            pids = {"worker": worker.pid, "broker": kafka.pid}
            cpu_at_first: dict[str, float] = {}
            try:
                startup_s, worker_s = asyncio.run(watch_outputs(
                    kafka.bootstrap, n, worker.alive,
                    on_first=lambda: cpu_at_first.update({k: cpu_seconds(p)
                                                          for k, p in pids.items()})))
                cpu_us = {k: (cpu_seconds(p) - cpu_at_first[k]) / n * 1e6 for k, p in pids.items()}
            except RuntimeError as exc:
                console.print(f"[red]{exc}[/]\n{worker.log_tail(40)}")
                raise SystemExit(1)
            worker_mb = vm_hwm_mb(worker.pid)

    base = n / raw_s
    table = Table(title=f"parcours throughput, {n:,} touchpoints (2 cores)")
    for col in ("what", "events/s", "ratio vs aiokafka raw", "peak memory"):
        table.add_column(col, justify="right" if col != "what" else "left")
    rows = [
        ("aiokafka raw consume + orjson (baseline)", n / raw_s, ""),
        ("aiokafka producer (fill the topic)", n / produce_s, ""),
        ("synthetic journeys generated + orjson (parcours simulate)", n / generate_s, ""),
        ("Faust agent that only batches and counts (floor)", floor_rate, ""),
        ("replay core: ingest + pipeline, no broker", n / core_s,
         f"{core_rss:,.0f} MB (bench process)"),
        ("parcours replay: file -> output files", n / replay_s["files"], ""),
        ("parcours replay: file -> output files + chDB (its default)", n / replay_s["chdb"], ""),
        ("parcours worker (Kafka -> chDB, all stages)", n / worker_s,
         f"{worker_mb:,.0f} MB (VmHWM)"),
    ]
    for what, rate, mem in rows:
        table.add_row(what, f"{rate:,.0f}", f"{rate / base:.3f}", mem)
    console.print(table)
    console.print(f"worker start-up until its first output: {startup_s:.1f} s; "
                  f"worker / Faust floor = {n / worker_s / floor_rate:.2f}; "
                  f"CPU per touchpoint while it ran: worker {cpu_us['worker']:,.1f} us, "
                  f"broker {cpu_us['broker']:,.1f} us "
                  f"(2 cores = {2e6 * worker_s / n:,.1f} us of CPU per touchpoint at that rate)")

    console.print("CPU per touchpoint, stage by stage (pure core and chDB, no broker)...")
    st = bench_stages(raws)
    costs = print_stages(console, st, 1e6 / base, produce_batch_s / n * 1e6)
    total = costs["sum"]
    console.print(f"50,000 touchpoints/s needs <= 20 us per touchpoint; measured worker: "
                  f"{1e6 * worker_s / n:,.1f} us per touchpoint "
                  f"({n / worker_s * total / 1e6:.2f} of the ceiling)")

    console.print("the sharded journey: sequencer and shard cores alone (bench/shards.py)...")
    shards = bench_shards(raws)
    print_shards(console, shards)

    console.print(f"the worker, one process against two in one group, "
                  f"{args.workers_events:,} touchpoints (bench/workers.py)...")
    workers = bench_workers(make_event_dicts(WORKERS_WARMUP + args.workers_events),
                            WORKERS_WARMUP)
    print_workers(console, workers)

    console.print("moment rules with the default pack (pure core)...")
    m = bench_rules(raws)
    table = Table(title=f"moments + preferences gate, {m['events']:,} touchpoints, "
                        f"{m['rules']} rules")
    for col in ("what", "touchpoints/s", "ratio vs pipeline without rules"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("pipeline, empty rule pack (baseline)", f"{m['base_rate']:,.0f}", "1.000")
    table.add_row("pipeline, default rule pack", f"{m['rate']:,.0f}",
                  f"{m['rate'] / m['base_rate']:.3f}")
    table.add_row("default pack without experiments or holdouts", f"{m['plain_rate']:,.0f}",
                  f"{m['plain_rate'] / m['base_rate']:.3f}")
    table.add_row("moments stage alone (difference)", f"{m['moments_rate']:,.0f}", "")
    console.print(table)
    console.print(f"experiments (entries, arms, goal conversions): "
                  f"{m['experiments_us']:+.2f} us per touchpoint against the same pack without "
                  "them (best of 3 each)")
    console.print(f"rule evaluations (touchpoint x rule): {m['evaluations_per_s']:,.0f}/s; "
                  f"{m['triggers']:,} triggers, {m['suppressions']:,} suppressions; moments state "
                  f"{m['state_bytes'] / max(1, m['profiles_with_state']):,.0f} B JSON per profile "
                  f"({m['profiles_with_state']:,} profiles)")

    console.print("the traits stage (pure core; bench/traits.py)...")
    traits = bench_traits(raws)
    traits_report(console, traits)

    console.print("the preference centre, the schema registry's read path, Avro outputs "
                  "(bench/centre.py)...")
    centre = bench_centre(raws[:50_000])
    centre_report(console, centre)

    seconds = float(os.environ.get("BENCH_LATENCY_SECONDS", "15"))
    table = Table(title="latency from a touchpoint entering Kafka to its trigger leaving (probes: "
                        "a person passing a store)")
    for col in ("offered load", "probes fired", "p50", "p99", "max"):
        table.add_column(col, justify="right")
    latencies = []
    rates = dict.fromkeys((1000, int(os.environ.get("BENCH_RATE", "5000"))))  # once each, in order
    loads: dict[int, list[dict]] = {}  # the offered touchpoints, made once per rate (read only)
    for rate, wait in ((rate, wait) for rate in rates for wait in ("0", "20")):
        console.print(f"produce -> trigger latency at {rate:,}/s offered for {seconds:.0f} s "
                      f"(PARCOURS_FETCH_MAX_WAIT_MS={wait})...")
        if rate not in loads:
            loads[rate] = make_event_dicts(int(rate * seconds) + rate)
        dicts = loads[rate]
        with tempfile.TemporaryDirectory() as tmp, EmbeddedKafka() as kafka:
            lat = bench_latency(kafka, Path(tmp), dicts, rate, seconds,
                                env={"PARCOURS_FETCH_MAX_WAIT_MS": wait})
        lat["fetch_max_wait_ms"] = int(wait)
        latencies.append(lat)
        waits = ("clients' defaults (Faust 1,500, aiokafka 500)" if wait == "0"
                 else f"{wait} (default)")
        table.add_row(f"{lat['produced'] / seconds:,.0f}/s, fetch wait {waits} ms",
                      f"{lat['triggers']} of {lat['probes']}",
                      f"{lat['p50_ms']:,.0f} ms", f"{lat['p99_ms']:,.0f} ms",
                      f"{lat['max_ms']:,.0f} ms")
    console.print(table)
    console.print("probes that did not fire are in the 5% global holdout (a suppression each)")

    credit_s = float(os.environ.get("BENCH_CREDIT_SECONDS", "20"))
    console.print(f"conversion -> credit lag on a live load at 1,000/s for {credit_s:.0f} s...")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedKafka() as kafka:
        credit = bench_credit_lag(kafka, Path(tmp), make_event_dicts(int(1000 * credit_s) + 1000),
                                  1000, credit_s)
    table = Table(title="credit lag: a conversion entering Kafka -> its credit rows "
                        "(touchpoints dated when sent, lateness 5 s)")
    for col in ("conversions credited", "p50", "p99", "max", "p50 beyond the lateness"):
        table.add_column(col, justify="right")
    table.add_row(f"{credit['credited']} of {credit['conversions']}", f"{credit['p50_ms']:,.0f} ms",
                  f"{credit['p99_ms']:,.0f} ms", f"{credit['max_ms']:,.0f} ms",
                  f"{credit['p50_ms'] - credit['lateness_ms']:,.0f} ms")
    console.print(table)
    console.print("the lag is the allowed lateness (5 minutes in the default pack) plus what the "
                  "worker adds; conversions of the load's last lateness are not counted")

    lag_phases = sink_lag_durations()
    lag_rate = int(os.environ.get("BENCH_SINK_LAG_RATE", "1000"))
    console.print(f"sink lag during a throttled-insert run at {lag_rate:,}/s: "
                  f"{' / '.join(f'{s:g}' for s in lag_phases)} s unthrottled / throttled / "
                  "unthrottled (bench/sink_lag.py)...")
    with tempfile.TemporaryDirectory() as tmp, EmbeddedKafka() as kafka:
        sink_lag = bench_sink_lag(kafka, Path(tmp),
                                  make_event_dicts(int(lag_rate * sum(lag_phases)) + lag_rate),
                                  lag_rate, lag_phases)
    print_sink_lag(console, sink_lag)

    n_conv = int(os.environ.get("BENCH_CONVERSIONS", "1000000"))
    console.print(f"heuristic credit for {n_conv:,} conversions...")
    h = bench_heuristics(n_conv)
    n_paths = int(os.environ.get("BENCH_PATHS", "1000000"))
    console.print(f"markov and shapley from the counts of {n_paths:,} closed paths...")
    d = bench_datadriven(n_paths)
    table = Table(title=f"attribution: {n_conv:,} conversions (6 heuristic models), "
                        f"{n_paths:,} closed paths (markov, shapley)")
    for col in ("what", "figure", "ratio vs baseline"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("one plain row per touch, no model (baseline)",
                  f"{h['base_rate']:,.0f} conversions/s", "1.000")
    table.add_row("credit_rows, 6 models",
                  f"{h['rate']:,.0f} conversions/s ({n_conv / h['rate']:.1f} s)",
                  f"{h['rate'] / h['base_rate']:.3f}")
    table.add_row("counting the paths' transitions and channel sets (what the SQL sums)",
                  f"{d['count_s']:.2f} s", "")
    table.add_row(f"markov_shares on the counts ({d['states']} states)",
                  f"{d['markov_s'] * 1000:.0f} ms", "")
    table.add_row(f"shapley_credit on the counts ({d['sets']} channel sets)",
                  f"{d['shapley_s'] * 1000:.0f} ms", "")
    table.add_row(f"chDB: read every path once, FINAL ({d['ch_rows']:,} rows) (baseline)",
                  f"{d['scan_s'] * 1000:.0f} ms", "1.000")
    for label, key in (("chDB: parcours attribution --model markov (SQL + solve)", "ch_markov_s"),
                       ("chDB: markov, order 2", "ch_markov2_s"),
                       ("chDB: parcours attribution --model shapley", "ch_shapley_s")):
        table.add_row(label, f"{d[key] * 1000:,.0f} ms", f"{d[key] / max(d['scan_s'], 1e-9):.1f}")
    console.print(table)
    console.print(f"(inserting the {n_paths:,} path rows into chDB took {d['insert_s']:.1f} s; "
                  f"building their records {d['records_s']:.1f} s)")

    console.print("ClickHouse sink: chDB inserts per table (bench/clickhouse.py)...")
    sink_bench = bench_clickhouse()
    console.print(clickhouse_report(sink_bench))

    ids_n = int(os.environ.get("BENCH_IDENTIFIERS", "1000000"))
    console.print(f"identity graph at {ids_n:,} identifiers...")
    r = bench_identity(ids_n)
    table = Table(title=f"identity graph, {r['identifiers']:,} identifiers, "
                        f"{r['profiles']:,} profiles, {r['events']:,} events")
    for col in ("what", "identifier lookups+links/s", "ratio vs dict baseline",
                "state per identifier"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("bare dict lookup+insert (baseline)", f"{r['baseline_rate']:,.0f}", "1.000", "")
    table.add_row("IdentityGraph.resolve (pure core)", f"{r['graph_rate']:,.0f}",
                  f"{r['graph_rate'] / r['baseline_rate']:.3f}",
                  f"{r['object_bytes_per_identifier']:,.0f} B objects, "
                  f"{r['bytes_per_identifier']:,.0f} B RSS delta")
    console.print(table)
    console.print(f"identity events/s: {r['events_per_s']:,.0f}")

    console.print("restart to first output, memory store vs RocksDB (bench/restart.py)...")
    restart = bench_restart()
    print_restart(console, restart)

    results = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "events": n,
        "cpus": os.cpu_count(),
        "throughput": {"aiokafka_raw_per_s": n / raw_s, "producer_per_s": n / produce_s,
                       "simulate_per_s": n / generate_s,
                       "faust_floor_per_s": floor_rate, "replay_core_per_s": n / core_s,
                       "replay_files_per_s": n / replay_s["files"],
                       "replay_chdb_per_s": n / replay_s["chdb"],
                       "worker_per_s": n / worker_s, "worker_ratio_vs_raw": n / worker_s / base,
                       "worker_peak_rss_mb": worker_mb, "worker_startup_s": startup_s,
                       "worker_cpu_us_per_event": cpu_us["worker"],
                       "broker_cpu_us_per_event": cpu_us["broker"]},
        "stages_us_per_event": costs,
        "stages": {k: v for k, v in st.items() if k != "us_per_event"},
        "shards": shards,
        "workers": workers,
        "moments": m,
        "traits": traits,
        "centre": centre,
        "latency": latencies,
        "credit_lag": credit,
        "sink_lag": {k: v for k, v in sink_lag.items()
                     if k not in ("samples", "probe_latencies")},
        "attribution": {"heuristics": h, **{k: v for k, v in d.items()
                                            if k not in ("shares", "shapley", "ch_markov")}},
        "identity": r,
        "restart": restart,
        "clickhouse_sink": sink_bench,
    }
    out = Path(os.environ.get("BENCH_RESULTS", "bench/results.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results: {out}")


if __name__ == "__main__":
    main()
