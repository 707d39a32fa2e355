"""Run a `parcours worker` as a child process and watch its output topics.

Used by `parcours demo`, the end-to-end tests and the benchmark: the worker runs exactly as in
production (its own process, its own chDB directory), the caller talks to it only through Kafka.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from streams.config import Topics, kafka_bootstrap
from streams.embedded.broker import free_port
from streams.kafka.clients import KafkaClients


class WorkerProcess:
    """`python -m streams.cli worker` (or `command`) with the given settings; stop() is graceful,
    then firm."""

    def __init__(self, kafka_url: str, clickhouse_url: str, data_dir: Path, *, app_id: str,
                 log_path: Path, metrics_port: int | None = None, extra_env: dict | None = None,
                 command: list[str] | None = None):
        self.env = {
            **os.environ,
            "PARCOURS_KAFKA_URL": kafka_url,
            "PARCOURS_CLICKHOUSE_URL": clickhouse_url,
            "PARCOURS_DATA_DIR": str(data_dir),
            "PARCOURS_APP_ID": app_id,
            "PARCOURS_WEB_PORT": str(free_port()),
            "PARCOURS_SESSION_TIMEOUT": "6",
            "PARCOURS_LOG_LEVEL": os.environ.get("PARCOURS_WORKER_LOG_LEVEL", "warning"),
            **({"PARCOURS_METRICS_PORT": str(metrics_port)} if metrics_port else {}),
            **(extra_env or {}),
        }
        self.command = command or [sys.executable, "-m", "streams.cli", "worker"]
        self.log_path = log_path
        self.metrics_port = metrics_port
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def metric(self, name: str) -> float | None:
        """The value of an unlabelled metric on the worker's /metrics (None before it is there,
        or before the worker serves its metrics)."""
        import urllib.error
        import urllib.request

        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=10).read().decode()
        except (urllib.error.URLError, ConnectionError):
            return None
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def wait_settled(self, timeout: float = 30.0) -> None:
        """Once its outputs are out: wait until the journey holds no touchpoint (the gauge is set
        when a batch has sent its outputs and its changelog), then until the sink stage has
        written every row sent so far to ClickHouse."""
        deadline = time.monotonic() + timeout
        while self.metric("parcours_held_events") != 0:
            if time.monotonic() > deadline or not self.alive():
                raise TimeoutError(f"touchpoints still held after {timeout:.0f} s")
            time.sleep(0.2)
        self.wait_sink(max(1.0, deadline - time.monotonic()))

    def wait_sink(self, timeout: float = 60.0) -> None:
        """Wait until the sink stage has written to ClickHouse (and committed) every sink-topic
        record sent before this call. TimeoutError when it has not within `timeout`."""
        done: list = []
        thread = threading.Thread(target=lambda: done.append(asyncio.run(sink_written(
            self.env["PARCOURS_KAFKA_URL"], f"{self.env['PARCOURS_APP_ID']}-sink", timeout,
            alive=self.alive))), daemon=True)
        thread.start()  # a thread: the caller may be inside an event loop itself
        thread.join(timeout + 30)
        if not done or not done[0]:
            raise TimeoutError(f"the sink stage has not written its rows after {timeout:.0f} s"
                               f"\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0, *, drain: bool = True) -> int | None:
        """SIGTERM (Faust shuts down cleanly: chDB closed), then SIGKILL after `timeout`. With
        `drain`, first wait (up to 60 s) until the sink stage has written what it was sent, so
        ClickHouse holds every row of the outputs seen so far."""
        if self.proc is None:
            return None
        if drain and self.proc.poll() is None:
            try:
                self.wait_sink()
            except TimeoutError:
                pass  # stopped anyway: the rows are in the sink topic, for the next start
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


async def sink_written(kafka_url: str, group: str, timeout: float, alive=lambda: True,
                       topic: str = Topics.sink) -> bool:
    """Whether the sink stage's group `group` committed the end (as of this call) of every
    partition of the sink topic within `timeout` seconds; True at once when the topic is empty."""
    from aiokafka import TopicPartition

    from streams.kafka.patches import true_end_offsets

    bootstrap = kafka_bootstrap(kafka_url)
    probe = KafkaClients.at(bootstrap).consumer(group_id=None, enable_auto_commit=False)
    await probe.start()
    try:
        await probe.topics()  # the cluster's metadata
        partitions = probe.partitions_for_topic(topic) or set()
    finally:
        await probe.stop()
    if not partitions:
        return True
    ends = await true_end_offsets(bootstrap, [TopicPartition(topic, p) for p in partitions])
    deadline = time.monotonic() + timeout
    consumer = KafkaClients.at(bootstrap).consumer(group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            committed = {tp: await consumer.committed(tp) or 0 for tp in ends}
            if all(committed[tp] >= end for tp, end in ends.items()):
                return True
            if time.monotonic() > deadline or not alive():
                return False
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()


async def count_until(connection: KafkaClients | str, topics: list[str], expected: int, *,
                      timeout: float, alive=lambda: True, progress=None,
                      key=None) -> dict[str, int]:
    """Read `topics` from the start until `expected` records in all (or distinct keys when `key`
    is given, to tolerate at-least-once duplicates) have arrived; returns counts per topic.
    `connection`: a `KafkaClients` or the brokers alone."""
    consumer = KafkaClients.at(connection).consumer(*topics, auto_offset_reset="earliest",
                                                    enable_auto_commit=False, group_id=None)
    await consumer.start()
    counts = {t: 0 for t in topics}
    seen: set = set()
    deadline = time.monotonic() + timeout
    try:
        while True:
            total = len(seen) if key else sum(counts.values())
            if total >= expected:
                return counts
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{total} of {expected} records on {topics} after {timeout:.0f} s")
            if not alive():
                raise RuntimeError("the worker stopped before the records arrived")
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, records in batches.items():
                counts[tp.topic] += len(records)
                if key:
                    seen.update(key(tp.topic, r) for r in records)
            if progress:
                progress(len(seen) if key else sum(counts.values()))
    finally:
        await consumer.stop()
