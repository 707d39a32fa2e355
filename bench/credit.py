"""How long credit lags its conversion: from a purchase entering Kafka to its credit rows.

A conversion is credited once the watermark has passed its event time: once every input partition
has sent an event later than the conversion plus the allowed lateness. So on a live stream the lag
is the lateness (event time) plus what the worker adds: the slowest partition, the batches, the
outputs. This runs the real worker on a live load: synthetic touchpoints re-dated to the moment they
are sent, at a steady rate over 4 partitions keyed as SDKs key them, with a rule pack whose only
change is a short lateness (the default 5 minutes would make the run that long). The lag is read on
`attribution.credit`, whose records the worker writes in the same batch as the ClickHouse rows,
concurrently, and acknowledges only when both are done.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from bench.load import offer
from bench.moments import first_seen
from streams.embedded.worker_process import WorkerProcess
from streams.moments.rules.loader import DEFAULT_PACK
from streams.simulate import partition_key

CONVERSIONS = ("purchase", "lead")


def _pack(tmp: Path, lateness_s: float) -> Path:
    """The default pack with `lateness_s` and its reference files named by absolute path."""
    text = DEFAULT_PACK.read_text(encoding="utf-8")
    text = text.replace("lateness: 5m", f"lateness: {lateness_s:g}s", 1)
    for name in ("stores.csv", "inventory.csv"):
        text = text.replace(f": {name}", f": {DEFAULT_PACK.parent / name}", 1)
    path = tmp / "credit-lag-pack.yaml"
    path.write_text(text, encoding="utf-8")
    return path


async def _offer_live(bootstrap: str, topic: str, events: list[dict], rate: int, seconds: float,
                      sent_at: dict) -> int:
    """Send `events` at `rate`/s, each dated the moment it is sent (epoch ms)."""
    async def send(producer, chunk: list[dict], _elapsed: float) -> None:
        now = time.time()
        for event in chunk:
            event = {**event, "event_time": int(now * 1000)}
            await producer.send(topic, orjson.dumps(event), key=partition_key(event, None))
            if event["type"] in CONVERSIONS:
                sent_at[event["event_id"]] = now

    return await offer(bootstrap, events, rate, seconds, send)


def bench_credit_lag(kafka, tmp: Path, events: list[dict], rate: int, seconds: float,
                     lateness_s: float = 5.0) -> dict:
    from streams.config import Topics

    t = Topics()
    kafka.create_topics({t.touchpoints: 4, t.stitch: 1})
    worker = WorkerProcess(kafka.url, f"chdb://{tmp / 'ch-credit'}", tmp / "data-credit",
                           app_id="parcours-credit-lag", log_path=tmp / "worker-credit.log",
                           extra_env={"PARCOURS_RULES": str(_pack(tmp, lateness_s)),
                                      "PARCOURS_BATCH_SECONDS": "0.01",
                                      "PARCOURS_BATCH_SIZE": "500"})
    sent_at: dict[str, float] = {}
    with worker:
        time.sleep(12)  # the worker joins its groups

        async def run() -> tuple[int, dict]:
            collector = asyncio.create_task(first_seen(
                kafka.bootstrap, t.credit, sent_at, time.time() + seconds + lateness_s + 20,
                id_of=lambda value: value["conversion_id"]))
            produced = await _offer_live(kafka.bootstrap, t.touchpoints, events, rate, seconds,
                                         sent_at)
            return produced, await collector

        produced, lags = asyncio.run(run())
    # the conversions of the last `lateness` of the load are never passed by a later event
    due = [c for c, at in sent_at.items() if at < max(sent_at.values(), default=0) - lateness_s - 1]
    values = sorted(lags[c] for c in due if c in lags)
    if not values:
        raise RuntimeError(f"no conversion was credited\n{worker.log_tail(30)}")

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] * 1000

    return {"rate": rate, "produced": produced, "lateness_ms": lateness_s * 1000,
            "conversions": len(due), "credited": len(values), "p50_ms": pct(0.50),
            "p99_ms": pct(0.99), "max_ms": values[-1] * 1000}
