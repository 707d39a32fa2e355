"""Sink lag during a throttled-insert run: ClickHouse slow to acknowledge, triggers unaffected.

One real `parcours worker` (embedded broker, chDB) is offered a steady load (BENCH_SINK_LAG_RATE,
default 1,000 touchpoints/s, keyed like real producers, with a probe person passing a store every
50 ms as in bench/moments.py) without a break, through three phases:
1. baseline: inserts at chDB's own speed (the baseline of the ratios, same run);
2. throttled: every ClickHouse insert first waits BENCH_SINK_LAG_DELAY seconds (default 1.5). A
   flush writes one insert per table holding rows, one after the other, so one takes 10-20 s
   instead of a few ms, and the sink falls behind. The worker runs under
   bench/slow_clickhouse.py, a bench stand-in that sleeps at the client boundary while a file
   holds a delay (and logs each delayed insert: their count is reported);
3. recovery: inserts at full speed again, until the load ends.
Every 0.5 s the sink lag is sampled twice: from Kafka (sink-topic records the sink group has not
committed, and the age of the oldest: what is not yet in ClickHouse) and from the worker's /metrics
(parcours_sink_lag_records, parcours_sink_lag_seconds, which the sink stage sets every second, also
in the middle of a slow flush; its records count uses the high-water marks its consumer last
fetched, which stop moving while a flush holds the consumer). Per phase: the largest lag of each,
and the probes' produce-to-trigger latency (p50/p99 of the probes sent in that phase), with ratios
against the baseline phase. "Behind" is a lag over twice the baseline phase's largest (records or
age): how long after the throttle began each measure showed the sink behind, how long after it
ended it had caught up, and when every sink record sent before the end was committed
(`WorkerProcess.wait_sink`). At the end the worker is stopped with drain and `touchpoints FINAL` in
its chDB is counted against the touchpoints produced.

The trigger latency of a run drifts up over its ~45 s on a busy 2-core machine even with no
throttle at all: BENCH_SINK_LAG_DELAY=0 runs the same phases unthrottled, the control to compare
the throttled run's phases with before blaming the sink.

Durations: BENCH_SINK_LAG_SECONDS="baseline,throttled,recovery" (default "10,20,12"); the section
takes about their sum plus ~25 s (worker start and warm-up, drain, stop).
Standalone: `python -m bench.sink_lag` prints the table and the result as JSON
(BENCH_SINK_LAG_JSON=1: with every sample and probe latency).
"""
from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

from bench import slow_clickhouse
from bench.committed_lag import CommittedLag
from bench.moments import first_seen, offer_load, probe_person
from streams import simulate
from streams.embedded.broker import free_port
from streams.embedded.worker_process import WorkerProcess

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("baseline", "throttled", "recovery")
SAMPLE_S = 0.5


def durations() -> tuple[float, float, float]:
    """(baseline, throttled, recovery) seconds from BENCH_SINK_LAG_SECONDS."""
    raw = os.environ.get("BENCH_SINK_LAG_SECONDS", "10,20,12")
    parts = [float(p) for p in raw.split(",")]
    if len(parts) != 3 or min(parts) <= 0:
        raise SystemExit(f"BENCH_SINK_LAG_SECONDS={raw!r}: three positive durations "
                         "(baseline,throttled,recovery), e.g. 10,20,12")
    return parts[0], parts[1], parts[2]


def _pct(values: list[float], p: float) -> float | None:
    return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else None


def _warm_up(kafka, topic: str, trigger_topic: str, worker: WorkerProcess, at_ms: int,
             timeout: float = 60) -> int:
    """Send three probe people (dated `at_ms`: not after the load, whose events would be late)
    and wait until a trigger of theirs comes back (the journey's groups joined; with no load they
    are released once the input partitions are reported idle), then until the sink stage has
    committed them (its group joined). Returns the touchpoints sent."""
    from streams.kafka.clients import KafkaClients

    async def run() -> int:
        producer = KafkaClients.at(kafka.bootstrap).producer(linger_ms=1)
        await producer.start()
        sent_at: dict[str, float] = {}
        try:
            for i in range(10_000_000, 10_000_003):  # ids apart from the load's probes
                consent, geofence = probe_person(i, at_ms)
                key = f"probe-{i}".encode()
                await producer.send_and_wait(topic, consent, key=key)
                sent_at[f"probe-{i}"] = time.time()
                await producer.send_and_wait(topic, geofence, key=key)
        finally:
            await producer.stop()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not worker.alive():
                raise RuntimeError(f"the worker stopped\n{worker.log_tail(30)}")
            if await first_seen(kafka.bootstrap, trigger_topic, sent_at, time.time() + 1):
                return 2 * len(sent_at)
        raise RuntimeError(f"no warm-up trigger after {timeout:.0f} s\n{worker.log_tail(30)}")

    sent = asyncio.run(run())
    worker.wait_sink(timeout)
    return sent


def bench_sink_lag(kafka, tmp: Path, events: list[dict], rate: int = 1000,
                   phases: tuple[float, float, float] | None = None,
                   delay_s: float | None = None) -> dict:
    """The throttled-insert run (see the module doc) on `kafka` (an EmbeddedKafka), the worker's
    files under `tmp`; `events` must hold at least rate x the phases' sum."""
    from sinks.clickhouse import close, connect
    from streams.config import Topics

    base_s, slow_s, recover_s = phases or durations()
    total_s = base_s + slow_s + recover_s
    delay_s = float(os.environ.get("BENCH_SINK_LAG_DELAY", "1.5")) if delay_s is None else delay_s
    t = Topics()
    kafka.create_topics({t.touchpoints: 4, t.stitch: 1})
    app_id = "parcours-sink-lag"
    delay_file = tmp / "insert-delay"
    ch_dir = tmp / "ch-sink-lag"
    worker = WorkerProcess(
        kafka.url, f"chdb://{ch_dir}", tmp / "data-sink-lag", app_id=app_id,
        log_path=tmp / "worker-sink-lag.log", metrics_port=free_port(),
        extra_env={"PARCOURS_BATCH_SECONDS": "0.01", "PARCOURS_BATCH_SIZE": "500",
                   "PARCOURS_IDLE_SECONDS": "2",
                   "PARCOURS_BENCH_INSERT_DELAY_FILE": str(delay_file),
                   "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT),
                                                             os.environ.get("PYTHONPATH")) if p)},
        command=[sys.executable, "-m", "bench.slow_clickhouse"])
    trigger_topic = t.trigger_topic("push")
    sent_at: dict[str, float] = {}
    # (s since the load started, gauge records, gauge s, committed records, committed s)
    samples: list[tuple[float, float | None, float | None, float, float]] = []
    marks: dict[str, float] = {}  # epoch s: load start, throttle on / off, load end
    committed: dict[str, float] = {}
    started = time.perf_counter()
    worker.start()
    try:
        warm = _warm_up(kafka, t.touchpoints, trigger_topic, worker,
                        simulate.event_ms(events[0]))
        warm_s = time.perf_counter() - started

        def gauges() -> tuple[float | None, float | None]:
            try:
                return (worker.metric("parcours_sink_lag_records"),
                        worker.metric("parcours_sink_lag_seconds"))
            except OSError:
                return None, None

        def wait_committed() -> None:  # every sink record sent before the throttle ended
            try:
                worker.wait_sink(120)
                committed["at"] = time.time()
            except TimeoutError:
                pass

        async def run() -> int:
            stop = asyncio.Event()
            outside = CommittedLag(kafka.bootstrap, f"{app_id}-sink", t.sink)
            await outside.start()

            async def sampler() -> None:
                while not stop.is_set():
                    gauge = await asyncio.to_thread(gauges)
                    seen = await outside.sample()
                    samples.append((time.time() - marks["start"], *gauge, *seen))
                    try:
                        await asyncio.wait_for(stop.wait(), SAMPLE_S)
                    except asyncio.TimeoutError:
                        pass

            async def throttle() -> threading.Thread:
                await asyncio.sleep(base_s)
                delay_file.write_text(f"{delay_s}\n")
                marks["throttle_on"] = time.time()
                await asyncio.sleep(slow_s)
                delay_file.unlink()
                marks["throttle_off"] = time.time()
                thread = threading.Thread(target=wait_committed, daemon=True)
                thread.start()
                return thread

            marks["start"] = time.time()
            sampling = asyncio.create_task(sampler())
            throttling = asyncio.create_task(throttle())
            collector = asyncio.create_task(first_seen(kafka.bootstrap, trigger_topic, sent_at,
                                                       marks["start"] + total_s + 5))
            try:
                produced = await offer_load(kafka.bootstrap, t.touchpoints, events, rate,
                                             total_s, sent_at)
                marks["end"] = time.time()
                waiter = await throttling
                latencies.update(await collector)
                await asyncio.to_thread(waiter.join, 130)
                await asyncio.to_thread(worker.wait_settled, 60)
                await asyncio.sleep(1.5)  # the gauges are set every second
            finally:
                stop.set()
                await sampling
                await outside.stop()
            return produced

        latencies: dict[str, float] = {}
        produced = asyncio.run(run())
    except BaseException:
        print(worker.log_tail(40), file=sys.stderr)
        raise
    finally:
        delay_file.unlink(missing_ok=True)
        code = worker.stop(drain=True)
    client = connect(f"chdb://{ch_dir}")
    try:
        rows = client.query("SELECT count() FROM touchpoints FINAL").result_rows[0][0]
    finally:
        close(client)

    t0 = marks["start"]
    bounds = {"baseline": (0.0, marks["throttle_on"] - t0),
              "throttled": (marks["throttle_on"] - t0, marks["throttle_off"] - t0),
              "recovery": (marks["throttle_off"] - t0, marks["end"] - t0)}
    out: dict = {"rate": rate, "delay_per_insert_s": delay_s,
                 "phases_s": {"baseline": base_s, "throttled": slow_s, "recovery": recover_s},
                 "warm_up_s": warm_s, "worker_exit": code}

    def top(values) -> float | None:
        return max((v for v in values if v is not None), default=None)

    for name, (lo, hi) in bounds.items():
        phase = [x for x in samples if lo <= x[0] < hi]
        values = sorted(lat for key, lat in latencies.items() if lo <= sent_at[key] - t0 < hi)
        out[name] = {"samples": len(phase),
                     "max_lag_records": top(x[3] for x in phase),
                     "max_lag_s": top(x[4] for x in phase),
                     "max_gauge_records": top(x[1] for x in phase),
                     "max_gauge_s": top(x[2] for x in phase),
                     "probes": sum(1 for at in sent_at.values() if lo <= at - t0 < hi),
                     "triggers": len(values),
                     "p50_ms": _pct(values, 0.50), "p99_ms": _pct(values, 0.99),
                     "max_ms": values[-1] * 1000 if values else None}
    base = out["baseline"]

    on, off = marks["throttle_on"] - t0, marks["throttle_off"] - t0

    def first(since: float, test) -> float | None:
        """Seconds from `since` to the first sample at or after it that passes `test`."""
        return next((x[0] - since for x in samples if x[0] >= since and test(x)), None)

    # "behind": the lag above twice the baseline phase's largest (records or age), as the commits
    # show it and as the gauges do; when it was first behind after the throttle began, and when
    # no longer behind after the throttle ended (for the gauges: and after they showed it)
    level = (2 * (base["max_lag_records"] or 0.0), 2 * max(base["max_lag_s"] or 0.0, SAMPLE_S))
    out["behind_level"] = {"records": level[0], "seconds": level[1]}

    def behind(records, seconds) -> bool:
        return (records or 0) > level[0] or (seconds or 0) > level[1]

    out["seen_s"] = first(on, lambda x: behind(x[3], x[4]))
    out["gauge_seen_s"] = first(on, lambda x: behind(x[1], x[2]))
    back = first(off, lambda x: not behind(x[3], x[4]))
    out["recovered_s"] = back
    if out["gauge_seen_s"] is None:
        out["gauge_recovered_s"] = None
    else:
        since = max(off, on + out["gauge_seen_s"])
        back = first(since, lambda x: not behind(x[1], x[2]))
        out["gauge_recovered_s"] = None if back is None else back + since - off
    out["committed_s"] = committed["at"] - marks["throttle_off"] if committed else None
    last = samples[-1] if samples else None
    out["lag_at_end"] = (None if last is None else
                         {"records": last[3], "seconds": last[4], "gauge_records": last[1],
                          "gauge_seconds": last[2]})
    log = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    out["inserts_delayed"] = log.count(slow_clickhouse.MARK)
    out["produced"] = produced + 2 * len(sent_at) + warm
    out["clickhouse_touchpoints"] = rows
    out["probe_latencies"] = sorted((round(sent_at[k] - t0, 2), round(v * 1000))
                                    for k, v in latencies.items() if k in sent_at)
    out["samples"] = [tuple(None if v is None else round(v, 2) for v in x) for x in samples]
    out["wall_s"] = time.perf_counter() - started
    return out


def print_sink_lag(console, r: dict) -> None:
    """The section bench/run.py prints."""
    from rich.table import Table

    def ms(v) -> str:
        return "-" if v is None else f"{v:,.0f} ms"

    def ratio(v, b) -> str:
        return "" if v is None or not b else f"{v / b:.2f}"

    def num(v, unit: str, fmt: str = ",.0f") -> str:
        return "-" if v is None else f"{v:{fmt}} {unit}"

    base = r["baseline"]
    table = Table(title=f"sink lag during a throttled-insert run: {r['rate']:,} touchpoints/s; "
                        f"throttled: each ClickHouse insert delayed {r['delay_per_insert_s']:g} s "
                        f"({r['inserts_delayed']} inserts)")
    for col in ("phase", "max lag, commits", "ratio", "oldest", "ratio", "max lag, gauges",
                "triggers", "p50", "ratio", "p99", "ratio"):
        table.add_column(col, justify="right" if col != "phase" else "left")
    for name in PHASES:
        p = r[name]
        label = f"{name} ({r['phases_s'][name]:g} s)"
        table.add_row(label + (" (baseline)" if name == PHASES[0] else ""),
                      num(p["max_lag_records"], "records"),
                      ratio(p["max_lag_records"], base["max_lag_records"]),
                      num(p["max_lag_s"], "s", ".1f"), ratio(p["max_lag_s"], base["max_lag_s"]),
                      f"{num(p['max_gauge_records'], 'records')}, "
                      f"{num(p['max_gauge_s'], 's', '.1f')}",
                      f"{p['triggers']} of {p['probes']}", ms(p["p50_ms"]),
                      ratio(p["p50_ms"], base["p50_ms"]), ms(p["p99_ms"]),
                      ratio(p["p99_ms"], base["p99_ms"]))
    console.print(table)

    def secs(v) -> str:
        return "never" if v is None else f"{v:.1f} s"

    end = r["lag_at_end"] or {}
    missing = r["produced"] - r["clickhouse_touchpoints"]
    console.print(f"lag, commits: sink-topic records not committed by the sink group (and the "
                  f"age of the oldest), sampled from Kafka every {SAMPLE_S:g} s; lag, gauges: "
                  "parcours_sink_lag_records / _seconds on the worker's /metrics (set every "
                  "second). trigger p50/p99: probes "
                  "sent in the phase, produce -> trigger")
    level = r["behind_level"]
    console.print(f"behind (lag over twice the baseline's: {level['records']:,.0f} records or "
                  f"{level['seconds']:.1f} s) {secs(r['seen_s'])} after the throttle began as the "
                  f"commits show it, {secs(r['gauge_seen_s'])} as the gauges do; caught up "
                  f"{secs(r['recovered_s'])} after it ended (gauges: "
                  f"{secs(r['gauge_recovered_s'])}); every sink record sent before its end "
                  f"committed (WorkerProcess.wait_sink) after {secs(r['committed_s'])}; once the "
                  f"load was over and settled: {num(end.get('records'), 'records')} behind")
    console.print(f"ClickHouse after a drained stop: {r['clickhouse_touchpoints']:,} touchpoints "
                  f"(FINAL) of {r['produced']:,} produced"
                  + (" - all there" if missing == 0 else f" - [red]{missing:+,} missing[/]")
                  + f"; the section took {r['wall_s']:.0f} s (worker start and warm-up "
                    f"{r['warm_up_s']:.0f} s)")


def main() -> None:
    import json
    import tempfile

    from rich.console import Console

    from bench.run import make_event_dicts
    from streams.embedded.broker import EmbeddedKafka
    from streams.worker import gc_tuning

    gc_tuning.tune()
    rate = int(os.environ.get("BENCH_SINK_LAG_RATE", "1000"))
    phases = durations()
    events = make_event_dicts(int(rate * sum(phases)) + rate)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedKafka() as kafka:
        result = bench_sink_lag(kafka, Path(tmp), events, rate, phases)
    console = Console(width=130)
    print_sink_lag(console, result)
    print(json.dumps(result, indent=1) if os.environ.get("BENCH_SINK_LAG_JSON") else
          json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
