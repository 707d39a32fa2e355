"""The broker side of `make bench`: filling the topic, the raw consumer and Faust's floor, the
worker's outputs as they come out, and the CPU and peak memory of a process."""
from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from streams import simulate
from streams.config import Topics

TOPICS = Topics()


async def produce(bootstrap: str, raws: list[bytes], partitions: int = 4) -> float:
    """Seconds to fill the topic with `raws`; then one later event per partition, so the worker
    releases every touchpoint without waiting for the partitions' idle reports."""
    from streams.kafka.clients import KafkaClients

    producer = KafkaClients.at(bootstrap).producer(linger_ms=10, max_batch_size=256 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        for raw in raws:
            await producer.send(TOPICS.touchpoints, raw)
        await producer.flush()
        seconds = time.perf_counter() - started
        last = max(simulate.event_ms(orjson.loads(raw)) for raw in raws[-100:])
        for p in range(partitions):
            await producer.send(TOPICS.touchpoints, orjson.dumps({
                "event_id": f"bench-closing-{p}", "event_time": last + 3_600_000,
                "type": "page_view", "channel": "web",
                "ids": {"cookie": f"bench-closing-{p}"}}), partition=p)
        await producer.flush()
    finally:
        await producer.stop()
    return seconds


async def produce_batches(bootstrap: str, raws: list[bytes], batch: int = 2000) -> float:
    """Seconds to send `raws` as the worker sends its outputs (BatchProducer, acks=all, batches)."""
    from streams.kafka.producer import BatchProducer

    producer = BatchProducer(bootstrap, client_id="bench-outputs")
    await producer.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(raws), batch):
            await producer.send_all([("bench.outputs", raw[:8], raw) for raw in raws[i:i + batch]])
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def bench_aiokafka(bootstrap: str, n: int) -> float:
    from streams.kafka.clients import KafkaClients

    consumer = KafkaClients.at(bootstrap).consumer(TOPICS.touchpoints, group_id=None,
                                                   auto_offset_reset="earliest",
                                                   enable_auto_commit=False)
    await consumer.start()
    try:
        seen, started = 0, None
        while seen < n:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=20000)).values():
                if started is None:
                    started = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return time.perf_counter() - started
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def watch_outputs(bootstrap: str, n: int, alive, timeout: float = 900,
                        on_first=None) -> tuple[float, float]:
    """(seconds until the first stitched record, seconds from first to n-th); `on_first()` is
    called when the first one is seen."""
    from streams.kafka.clients import KafkaClients

    consumer = KafkaClients.at(bootstrap).consumer(TOPICS.stitched, group_id=None,
                                                   auto_offset_reset="earliest",
                                                   enable_auto_commit=False)
    await consumer.start()
    t0 = time.perf_counter()
    first = None
    seen = 0
    try:
        while seen < n:
            if time.perf_counter() - t0 > timeout or not alive():
                raise RuntimeError(f"worker produced {seen} of {n} records")
            for records in (await consumer.getmany(timeout_ms=500, max_records=20000)).values():
                if first is None:
                    first = time.perf_counter()
                    if on_first is not None:
                        on_first()
                seen += len(records)
        return first - t0, time.perf_counter() - first
    finally:
        await consumer.stop()


def bench_faust_floor(kafka_url: str, n: int, tmp: Path) -> float:
    """records/s of a Faust agent that only batches and counts (bench/faust_floor.py)."""
    import subprocess
    import sys

    from streams.embedded.broker import free_port

    env = {**os.environ, "URL": kafka_url, "WEBPORT": str(free_port()), "N": str(n),
           "APP_ID": f"faust-floor-{os.getpid()}", "DATADIR": str(tmp / "faust-floor")}
    out = subprocess.run([sys.executable, "-m", "bench.faust_floor", "worker"], env=env,
                         capture_output=True, text=True, timeout=600)
    for line in (out.stdout + out.stderr).splitlines():
        if "RATE" in line:
            return float(line.split("RATE", 1)[1].split()[0])
    raise RuntimeError(f"faust floor run printed no rate:\n{out.stderr[-2000:]}")


def proc_status_mb(pid: int, field: str) -> float:
    """A memory field of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: RSS now), in MB."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def vm_hwm_mb(pid: int) -> float:
    return proc_status_mb(pid, "VmHWM")


def metric_sum(port: int, prefix: str) -> float | None:
    """The sum of every series of `prefix` on a worker's /metrics (None when not served)."""
    import urllib.request

    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    except OSError:
        return None
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
               if line.startswith(prefix))
