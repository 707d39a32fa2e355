"""Moments benchmark: rule evaluation in the pure core, and produce-to-trigger latency in the
worker.

1. Rules: the same synthetic touchpoints through `Pipeline.process` with the default rule pack and
   with an empty pack (the baseline, same run): the difference is what moments + the preferences
   gate cost. Reported as touchpoints/s and (touchpoint x rule) evaluations/s; and the default
   pack without its experiment and holdouts: the difference is what experiment entries and goal
   conversions cost.
2. Latency: the population is produced at a fixed offered load (BENCH_RATE, default 5,000/s) for
   BENCH_LATENCY_SECONDS to a running `parcours worker` (keyed like real producers); every 50 ms a
   probe person (consent to push, no quiet hours) passes a store. A second run at 1,000/s shows the
   latency when the worker is not near its throughput limit. The latency of a probe is the
   trigger record's timestamp on `triggers.push` minus the wall-clock time its geofence
   touchpoint was handed to the producer.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import orjson

from bench.load import offer
from streams import simulate
from streams.embedded.worker_process import WorkerProcess
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.pipeline import Pipeline
from streams.simulate.io import partition_key

PARIS_15 = {"lat": 48.8437, "lon": 2.2958, "tz": "Europe/Paris"}


def ingested(raws: list[bytes], batch: int = 5000) -> list[list]:
    """The raw touchpoints through ingest, in batches of `batch` (their accepted touchpoints)."""
    batches = []
    for i in range(0, len(raws), batch):
        good, _ = ingest_batch([(r, "bench", 0, i + j) for j, r in enumerate(raws[i:i + batch])])
        batches.append(good)
    return batches


def bench_rules(raws: list[bytes], batch: int = 5000) -> dict:
    good_batches = ingested(raws, batch)

    def run(rules: RulePack) -> tuple[float, Pipeline, int, int]:
        pipeline = Pipeline(rules=rules)
        triggers = suppressions = 0
        started = time.perf_counter()
        for good in good_batches:
            out = pipeline.process([dict(tp) for tp in good])
            triggers += len(out.triggers)
            suppressions += len(out.suppressions)
        return time.perf_counter() - started, pipeline, triggers, suppressions

    pack = load_default()
    empty = RulePack(rules=(), preferences=pack.preferences)
    # the same pack without its experiment and holdouts: what entries and conversions cost
    plain = replace(pack, rules=tuple(replace(r, experiment=None, holdout_pct=0.0)
                                      for r in pack.rules))
    base_s, _, _, _ = run(empty)
    # their difference is a few microseconds a touchpoint, below one run's noise (a collection
    # landing in one run, not the other): the best of three, alternated
    plain_s = with_s = float("inf")
    for _ in range(3):
        plain_s = min(plain_s, run(plain)[0])
        seconds, pipeline, triggers, suppressions = run(pack)
        with_s = min(with_s, seconds)
    n = sum(len(g) for g in good_batches)
    moments_s = max(with_s - base_s, 1e-9)
    state = pipeline.states["moments"].backing
    return {"events": n, "rules": len(pack.rules), "base_rate": n / base_s, "rate": n / with_s,
            "plain_rate": n / plain_s, "experiments_us": (with_s - plain_s) / n * 1e6,
            "moments_rate": n / moments_s, "evaluations_per_s": n * len(pack.rules) / moments_s,
            "triggers": triggers, "suppressions": suppressions,
            "profiles_with_state": len(state),
            "state_bytes": sum(len(orjson.dumps(v)) for v in state.values())}


def probe_person(i: int, t_ms: int) -> tuple[bytes, bytes]:
    ids = {"user": f"probe-{i}", "device": f"probe-d-{i}"}
    consent = {"event_id": f"probe-consent-{i}", "event_time": t_ms - 1000, "type": "consent",
               "channel": "app", "ids": ids,
               "properties": {"channel": "push", "opt_in": True, "quiet_hours": ""}}
    geofence = {"event_id": f"probe-{i}", "event_time": t_ms, "type": "geofence_enter",
                "channel": "store", "ids": ids, "context": PARIS_15}
    return orjson.dumps(consent), orjson.dumps(geofence)


async def offer_load(bootstrap: str, topic: str, events: list[dict], rate: int, seconds: float,
                      sent_at: dict) -> int:
    ticks = probes = 0

    async def send(producer, chunk: list[dict], elapsed: float) -> None:
        nonlocal ticks, probes
        for e in chunk:
            await producer.send(topic, orjson.dumps(e), key=partition_key(e, None))
        ticks += 1
        # a probe every 50 ms, at the simulated time of the stream; none in the last second
        # (the load's last events wait for the partitions' idle reports, not for the worker)
        if ticks % 5 == 0 and elapsed < seconds - 1:
            consent, geofence = probe_person(probes, simulate.event_ms(chunk[-1]))
            key = f"probe-{probes}".encode()  # one person's events stay in order
            await producer.send(topic, consent, key=key)
            sent_at[f"probe-{probes}"] = time.time()
            await producer.send(topic, geofence, key=key)
            probes += 1

    return await offer(bootstrap, events, rate, seconds, send)


async def first_seen(bootstrap: str, topic: str, sent_at: dict, until: float,
                     id_of=lambda value: value.get("event_id", "")) -> dict[str, float]:
    """Seconds from `sent_at[id]` to the first record of `topic` whose `id_of(value)` is that
    id (its broker timestamp), for the records read until `until` (epoch s)."""
    from streams.kafka.clients import KafkaClients

    consumer = KafkaClients.at(bootstrap).consumer(topic, group_id=None,
                                                   auto_offset_reset="earliest",
                                                   enable_auto_commit=False)
    await consumer.start()
    latencies: dict[str, float] = {}
    try:
        while time.time() < until:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    key = id_of(orjson.loads(r.value))
                    if key in sent_at and key not in latencies:
                        latencies[key] = r.timestamp / 1000 - sent_at[key]
    finally:
        await consumer.stop()
    return latencies


def bench_latency(kafka, tmp: Path, events: list[dict], rate: int, seconds: float,
                  env: dict | None = None) -> dict:
    from streams.config import Topics

    t = Topics()
    kafka.create_topics({t.touchpoints: 4, t.stitch: 1})
    worker = WorkerProcess(kafka.url, f"chdb://{tmp / 'ch-latency'}", tmp / "data-latency",
                           app_id="parcours-latency", log_path=tmp / "worker-latency.log",
                           extra_env={"PARCOURS_BATCH_SECONDS": "0.01",
                                      "PARCOURS_BATCH_SIZE": "500", **(env or {})})
    sent_at: dict[str, float] = {}
    with worker:
        # warm up: the worker has joined its group once a first probe comes back
        time.sleep(12)

        async def run() -> tuple[int, list[float]]:
            collector = asyncio.create_task(first_seen(kafka.bootstrap, t.trigger_topic("push"),
                                                       sent_at, time.time() + seconds + 15))
            produced = await offer_load(kafka.bootstrap, t.touchpoints, events, rate, seconds,
                                         sent_at)
            return produced, sorted((await collector).values())

        produced, latencies = asyncio.run(run())
    if not latencies:
        raise RuntimeError(f"no probe trigger came back\n{worker.log_tail(30)}")

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {"offered_rate": rate, "produced": produced, "probes": len(sent_at),
            "triggers": len(latencies), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": latencies[-1] * 1000}
