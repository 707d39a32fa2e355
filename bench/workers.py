"""Throughput of the worker: one process against two in one group, on the embedded broker.

The same touchpoints (the synthetic populations of `make bench`) go through a fresh embedded broker
once per run: 4 input partitions keyed as SDKs key them, `PARCOURS_JOURNEY_PARTITIONS=4` (four
profile shards), `PARCOURS_STANDBY_REPLICAS=0`, chDB written by one process (chDB lets one process
open its directory: the second worker runs with `PARCOURS_SINK_STAGE=off`, as in
tests/e2e/test_shards.py). With two workers Faust gives each two shards and one of them the
sequencer; the ingest stage's group splits the input partitions between them.

Each run: the workers start on empty topics; a warm-up (`--warmup` touchpoints, the oldest of the
input) is produced and read back from `touchpoints.stitched` until every worker has ingested
touchpoints and run shard batches (the groups have settled: the measured part has no start-up and
no initial rebalance in it); then the measured touchpoints are produced at once, with one later
touchpoint per input partition so that the sequencer releases the last ones without waiting for
idle reports (they are not counted), and timed from the first send until the last of them is on
`touchpoints.stitched` (`count_until`, distinct event ids). Also: each process's CPU per
touchpoint over that time (the broker's too), and from the workers' metrics the merges whose state
crossed shards (per second of the run) and how long a parked profile waited for its hand-off.
The baseline is the one-process run of the same run; this machine's cores are shared by the
broker, the bench and the workers (`os.cpu_count()` is printed with the figures).

`python -m bench.workers [--events N]` runs this section alone.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import orjson

from bench.kafka import cpu_seconds, metric_sum
from streams import simulate
from streams.config import Topics
from streams.embedded.broker import EmbeddedKafka, free_port
from streams.embedded.worker_process import WorkerProcess, count_until
from streams.kafka.clients import KafkaClients

TOPICS = Topics()
PARTITIONS = 4
SHARDS = 4
EVENTS = 100_000  # the default of `--events`: the section (two runs) takes about a minute
WARMUP = 3_000
APP_ID = "bench-workers"
CLOSING = "bench-workers-closing-"


def _worker(kafka: EmbeddedKafka, root: Path, name: str, sink: bool) -> WorkerProcess:
    return WorkerProcess(kafka.url, f"chdb://{root / 'ch'}", root / f"data-{name}",
                         app_id=APP_ID, log_path=root / f"worker-{name}.log",
                         metrics_port=free_port(),
                         extra_env={"PARCOURS_INPUT_PARTITIONS": str(PARTITIONS),
                                    "PARCOURS_JOURNEY_PARTITIONS": str(SHARDS),
                                    "PARCOURS_STANDBY_REPLICAS": "0",
                                    "PARCOURS_IDLE_SECONDS": "2",
                                    "PARCOURS_SINK_STAGE": "on" if sink else "off"})


async def _closing(bootstrap: str, after_ms: int) -> None:
    """One touchpoint per input partition, an hour after the input's last."""
    producer = KafkaClients.at(bootstrap).producer(linger_ms=5)
    await producer.start()
    try:
        for p in range(PARTITIONS):
            event_id = f"{CLOSING}{p}"
            await producer.send(TOPICS.touchpoints, orjson.dumps({
                "event_id": event_id, "event_time": after_ms + 3_600_000, "type": "page_view",
                "channel": "web", "ids": {"cookie": event_id}}), partition=p)
        await producer.flush()
    finally:
        await producer.stop()


def _logs(workers: list[WorkerProcess]) -> str:
    return "\n".join(f"--- {w.log_path.name} ---\n{w.log_tail(40)}" for w in workers)


def _settle(workers: list[WorkerProcess], timeout: float = 180) -> None:
    """Until every worker has ingested touchpoints and run shard batches."""
    deadline = time.monotonic() + timeout
    while True:
        if all((metric_sum(w.metrics_port, 'parcours_batch_size_count{stage="shard"}') or 0) > 0
               and (metric_sum(w.metrics_port, 'parcours_batch_size_count{stage="ingest"}')
                    or 0) > 0 for w in workers):
            return
        if time.monotonic() > deadline or not all(w.alive() for w in workers):
            raise RuntimeError(f"the workers did not all take part within {timeout:.0f} s\n"
                               f"{_logs(workers)}")
        time.sleep(0.2)


def run(events: list[dict], warmup: int, processes: int, root: Path) -> dict:
    """One run (see the module docstring) with `processes` workers in one group."""
    measured = events[warmup:]
    first_id = events[0]["event_id"]

    def key(_topic, record) -> str:
        event_id = orjson.loads(record.value)["event_id"]
        # the closing touchpoints count as one already seen: only the input is counted
        return first_id if event_id.startswith(CLOSING) else event_id

    with EmbeddedKafka() as kafka:
        kafka.create_topics({TOPICS.touchpoints: PARTITIONS})
        workers: list[WorkerProcess] = []
        try:
            started = time.perf_counter()
            for i in range(processes):
                workers.append(_worker(kafka, root, f"{processes}-{i}", sink=i == 0).start())

            def alive() -> bool:
                return all(w.alive() for w in workers)

            asyncio.run(simulate.produce(events[:warmup], kafka.bootstrap, TOPICS.touchpoints))
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], warmup, timeout=300,
                                    alive=alive, key=key))
            _settle(workers)
            settled_s = time.perf_counter() - started
            pids = {**{f"worker {i}": w.pid for i, w in enumerate(workers)}, "broker": kafka.pid}
            cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}
            shard_before = _shard_counts(workers)
            t0 = time.perf_counter()
            asyncio.run(simulate.produce(measured, kafka.bootstrap, TOPICS.touchpoints))
            produce_s = time.perf_counter() - t0
            asyncio.run(_closing(kafka.bootstrap, max(simulate.event_ms(e) for e in measured)))
            asyncio.run(count_until(kafka.bootstrap, [TOPICS.stitched], len(events),
                                    timeout=900, alive=alive, key=key))
            seconds = time.perf_counter() - t0
            cpu_us = {name: (cpu_seconds(pid) - cpu[name]) / len(measured) * 1e6
                      for name, pid in pids.items()}
            shards = [metric_sum(w.metrics_port, 'parcours_events_in_total{topic="'
                                 f'{TOPICS.journey}"') or 0 for w in workers]
            after = _shard_counts(workers)
            hand = {name: after[name] - shard_before[name] for name in after}
        except (TimeoutError, RuntimeError) as exc:
            raise RuntimeError(f"{exc}\n{_logs(workers)}") from None
        finally:
            for w in workers:
                w.stop(timeout=20, drain=False)
    return {"processes": processes, "events": len(measured), "seconds": seconds,
            "per_s": len(measured) / seconds, "produce_s": produce_s, "settled_s": settled_s,
            "cpu_us": cpu_us, "journey_events": shards, "cross_merges": hand["cross"],
            "cross_merges_per_s": hand["cross"] / seconds, "parked": hand["parked"],
            "park_mean_s": hand["park_s"] / hand["waits"] if hand["waits"] else None}


def _shard_counts(workers: list[WorkerProcess]) -> dict[str, float]:
    """Cross-shard merges, parkings and park waits (count, seconds) so far, over the workers."""
    names = {"cross": "parcours_shard_cross_merges_total",
             "parked": "parcours_shard_parked_total",
             "waits": "parcours_shard_park_seconds_count",
             "park_s": "parcours_shard_park_seconds_sum"}
    return {name: sum(metric_sum(w.metrics_port, metric) or 0 for w in workers)
            for name, metric in names.items()}


def bench_workers(events: list[dict], warmup: int = WARMUP) -> dict:
    """The one-process run, then the two-process run, over the same touchpoints."""
    import os

    out: dict = {"cpus": os.cpu_count(), "warmup": warmup, "runs": []}
    with tempfile.TemporaryDirectory(prefix="parcours-workers-") as tmp:
        for processes in (1, 2):
            out["runs"].append(run(events, warmup, processes, Path(tmp) / f"p{processes}"))
    one, two = out["runs"]
    out["ratio"] = two["per_s"] / one["per_s"]
    return out


def print_workers(console, r: dict) -> None:
    from rich.table import Table

    one = r["runs"][0]
    table = Table(title=f"worker throughput, {one['events']:,} touchpoints after a "
                        f"{r['warmup']:,}-touchpoint warm-up, {PARTITIONS} input partitions, "
                        f"{SHARDS} shards, {r['cpus']} cores for everything")
    for col in ("workers", "touchpoints/s", "ratio vs 1 process", "seconds", "CPU per touchpoint",
                "journey touchpoints per worker (warm-up included)"):
        table.add_column(col, justify="right" if col != "CPU per touchpoint" else "left")
    for run_ in r["runs"]:
        cpu = ", ".join(f"{name} {us:,.0f} us" for name, us in run_["cpu_us"].items())
        table.add_row(f"{run_['processes']}" + (" (baseline)" if run_ is one else ""),
                      f"{run_['per_s']:,.0f}", f"{run_['per_s'] / one['per_s']:.3f}",
                      f"{run_['seconds']:.1f} s", cpu,
                      " / ".join(f"{n:,.0f}" for n in run_["journey_events"]))
    console.print(table)
    console.print("from the first send of the measured touchpoints to the last on "
                  "touchpoints.stitched; filling the topic took " + ", ".join(
                      f"{run_['produce_s']:.1f} s" for run_ in r["runs"])
                  + "; start-up until the group settled " + ", ".join(
                      f"{run_['settled_s']:.1f} s" for run_ in r["runs"]))
    for run_ in r["runs"]:
        wait = (f"a parked profile waited {run_['park_mean_s'] * 1000:,.0f} ms on average"
                if run_["park_mean_s"] is not None else "no profile waited")
        console.print(f"{run_['processes']} worker(s): {run_['cross_merges']:,.0f} cross-shard "
                      f"merges ({run_['cross_merges_per_s']:,.1f}/s), {run_['parked']:,.0f} "
                      f"parkings; {wait} (the transfer's round trip through Kafka, queued "
                      "behind the shard's journey backlog)")


def main() -> None:
    from rich.console import Console

    from bench.run import make_event_dicts

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--warmup", type=int, default=WARMUP)
    args = parser.parse_args()
    console = Console(width=130)
    started = time.perf_counter()
    result = bench_workers(make_event_dicts(args.warmup + args.events), args.warmup)
    print_workers(console, result)
    console.print(f"({time.perf_counter() - started:.1f} s with the input's generation)")


if __name__ == "__main__":
    main()
