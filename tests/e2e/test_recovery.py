"""Exact end offsets and exact Faust table recovery on the embedded Tansu broker.

Tansu 0.6.0 answers ListOffsets(latest) with the base offset of the last record batch + 1. These
tests prove that `streams.kafka.patches.true_end_offsets` gives the real log end anyway, and that a
Faust worker with `install_faust_recovery_fix()` recovers every key of a table from its changelog,
where the same worker without the fix silently loses the tail of the last changelog batch.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.embedded.broker import EmbeddedKafka, free_port
from streams.kafka.patches import confirm_end_offsets, install_faust_recovery_fix, true_end_offsets

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kafka():
    with EmbeddedKafka() as broker:
        yield broker


async def produce_batched(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """`count` records in as few producer batches as linger allows (many records per batch)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, partition=partition)
            for i in range(count)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_one_by_one(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """`count` records, each awaited before the next: one record per batch."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):
            await producer.send_and_wait(topic, value=b"single-%d" % i, partition=partition)
    finally:
        await producer.stop()


async def listed_end_offsets(bootstrap: str,
                             tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    """The broker's own ListOffsets(latest) answer, as aiokafka's `end_offsets` gets it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets(tps)
    finally:
        await asyncio.sleep(0)  # aiokafka 0.14: a group-less consumer must run once before stop()
        await consumer.stop()


@pytest.fixture(scope="module")
def offsets_topic(kafka):
    """p0: 5,000 records in multi-record batches; p1: 3 single-record batches; p2: empty."""
    topic = f"recovery.offsets-{uuid.uuid4().hex[:8]}"
    kafka.create_topics({topic: 3})

    async def fill():
        await produce_batched(kafka.bootstrap, topic, 0, 5000)
        await produce_one_by_one(kafka.bootstrap, topic, 1, 3)

    asyncio.run(fill())
    return topic, {0: 5000, 1: 3, 2: 0}


def test_true_end_offsets_equal_the_records_produced(kafka, offsets_topic):
    topic, produced = offsets_topic
    tps = [TopicPartition(topic, p) for p in produced]
    ends = asyncio.run(true_end_offsets(kafka.bootstrap, tps))
    assert ends == {TopicPartition(topic, p): n for p, n in produced.items()}

    # Keyed by what the caller passed: Faust TPs and plain tuples work the same way.
    from faust.types import TP

    faust_ends = asyncio.run(true_end_offsets(kafka.bootstrap, [TP(topic, 0), (topic, 1)]))
    assert faust_ends == {TP(topic, 0): 5000, (topic, 1): 3}
    assert asyncio.run(true_end_offsets(kafka.bootstrap, [])) == {}


def test_tansu_list_offsets_answers_the_last_batch_not_the_log_end(kafka, offsets_topic):
    """A fact about the broker, not about our code: skipped once the broker answers correctly."""
    topic, produced = offsets_topic
    tps = [TopicPartition(topic, p) for p in produced]
    listed = asyncio.run(listed_end_offsets(kafka.bootstrap, tps))
    # Single-record batches and empty partitions: base offset of the last batch + 1 is the log end.
    assert listed[tps[1]] == 3 and listed[tps[2]] == 0
    if listed[tps[0]] == produced[0]:
        pytest.skip("the broker now answers ListOffsets(latest) with the log end offset")
    # Multi-record batches: the answer stops inside the log, at the start of its last batch + 1.
    assert 1 <= listed[tps[0]] < produced[0]


def test_confirm_end_offsets_only_raises_answers(kafka, offsets_topic):
    topic, produced = offsets_topic
    tp0, tp1, tp2 = (TopicPartition(topic, p) for p in produced)
    # A correct answer is confirmed as is; a wrong one (as Tansu gives) is raised to the log end.
    confirmed = asyncio.run(confirm_end_offsets(kafka.bootstrap, {tp0: 1, tp1: 3, tp2: 0}))
    assert confirmed == {tp0: 5000, tp1: 3, tp2: 0}
    # Nothing to confirm: no connection is even made.
    assert asyncio.run(confirm_end_offsets("127.0.0.1:1", {tp2: 0})) == {tp2: 0}


def test_install_faust_recovery_fix_is_idempotent(monkeypatch):
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    original = AIOKafkaConsumerThread._highwaters
    monkeypatch.setattr(AIOKafkaConsumerThread, "_highwaters", original)  # restored after the test
    assert install_faust_recovery_fix() is True
    patched = AIOKafkaConsumerThread._highwaters
    assert patched is not original and patched.__wrapped__ is original
    assert install_faust_recovery_fix() is False
    assert AIOKafkaConsumerThread._highwaters is patched


# -- Faust: a worker writes N keys into a table; another worker recovers the table ----------------

WORKER = r'''
"""Faust worker for tests/e2e/test_recovery.py.

argv: MODE BROKER_URL APP_ID WEB_PORT DATADIR N OUT_FILE FIX
  write:   set table[key] = 1 for the N distinct keys of topic "<app id>-input", taken in batches
           (so changelog batches hold many records), flush the producer, write {"size": ...}.
  recover: consume only the empty topic "<app id>-idle" (nothing can rewrite the table), let Faust
           recover the table from its changelog, write {"size": ..., "highwaters": ...}.
  FIX=1 installs streams.kafka.patches.install_faust_recovery_fix() before the app exists.
"""
import json
import os
import sys

mode, broker, app_id, web_port, datadir, n, out, fix = sys.argv[1:9]
n = int(n)
sys.path.insert(0, os.environ["PARCOURS_REPO"])

import faust

if fix == "1":
    from streams.kafka.patches import install_faust_recovery_fix

    install_faust_recovery_fix()

app = faust.App(
    app_id,
    broker=broker,
    store="memory://",
    datadir=datadir,
    web_enabled=False,
    web_port=int(web_port),  # bound even with the web server disabled
    topic_partitions=1,
    topic_replication_factor=1,
    broker_session_timeout=6,  # Tansu holds a join for half of it
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=6,
    consumer_auto_offset_reset="earliest",
    stream_wait_empty=False,
    producer_linger=0.05,
)
# use_partitioner: the writes below happen on a batch, outside the iteration of one event.
table = app.Table("keys", default=int, use_partitioner=True)


def write_out(payload):
    with open(out + ".tmp", "w") as fh:
        json.dump(payload, fh)
    os.replace(out + ".tmp", out)


if mode == "write":
    source = app.topic(f"{app_id}-input", value_type=bytes, value_serializer="raw")

    @app.agent(source)
    async def fill(stream):
        done = False
        async for batch in stream.take(2000, within=0.5):
            for value in batch:
                table[value.decode()] = 1
            if not done and len(table) >= n:
                done = True
                await app.producer.flush()
                write_out({"size": len(table)})

else:
    idle = app.topic(f"{app_id}-idle", value_type=bytes, value_serializer="raw")

    @app.agent(idle)
    async def nothing(stream):
        async for _ in stream:
            pass

    @table.on_recover
    async def recovered():
        recovery = app.tables.recovery
        if recovery.actives_for_table[table]:
            write_out({
                "size": len(table),
                "highwaters": {f"{tp.topic}:{tp.partition}": hw
                               for tp, hw in recovery.active_highwaters.items()},
            })


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning").execute_from_commandline()
'''


class Workers:
    """Faust worker subprocesses; every one is stopped (TERM, then KILL) at the end of the test."""

    def __init__(self, root: Path, broker_url: str, app_id: str) -> None:
        self.root, self.broker_url, self.app_id = root, broker_url, app_id
        self.script = root / "worker.py"
        self.script.write_text(WORKER)
        self.procs: list[subprocess.Popen] = []

    def run(self, name: str, mode: str, n: int, *, fix: bool, timeout: float = 45.0) -> dict:
        """Start a worker, wait for its report, stop it gracefully, return the report."""
        out, log_path = self.root / f"{name}.json", self.root / f"{name}.log"
        argv = [
            sys.executable, str(self.script), mode, self.broker_url, self.app_id, str(free_port()),
            str(self.root / f"data-{name}"), str(n), str(out), "1" if fix else "0",
        ]  # fmt: skip
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PARCOURS_REPO": str(REPO)},
            )  # fmt: skip
        self.procs.append(proc)
        deadline = time.monotonic() + timeout
        while not out.exists():
            if proc.poll() is not None:
                pytest.fail(f"worker {name} exited with {proc.returncode}:\n{self.tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {name} gave no report within {timeout:g}s:\n"
                            f"{self.tail(log_path)}")
            time.sleep(0.1)
        report = json.loads(out.read_text())
        self.stop(proc)
        return report

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 15.0) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Faust leaves the group and flushes on SIGTERM
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc, grace=5.0)

    @staticmethod
    def tail(path: Path, size: int = 4000) -> str:
        return path.read_text(errors="replace")[-size:]


@pytest.fixture
def workers(kafka, tmp_path):
    pool = Workers(tmp_path, kafka.url, f"parcours-recovery-{uuid.uuid4().hex[:10]}")
    try:
        yield pool
    finally:
        pool.stop_all()


@pytest.mark.e2e
def test_faust_table_recovery_is_exact_with_the_fix(kafka, workers):
    n = 20_000
    app_id = workers.app_id
    kafka.create_topics({f"{app_id}-input": 1, f"{app_id}-idle": 1})

    async def feed():
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=20)
        await producer.start()
        try:
            futures = [await producer.send(f"{app_id}-input", value=b"key-%06d" % i)
                       for i in range(n)]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(feed())
    assert workers.run("writer", "write", n, fix=False) == {"size": n}

    changelog = TopicPartition(f"{app_id}-keys-changelog", 0)
    listed = asyncio.run(listed_end_offsets(kafka.bootstrap, [changelog]))[changelog]
    assert asyncio.run(true_end_offsets(kafka.bootstrap, [changelog])) == {changelog: n}

    fixed = workers.run("recover-fixed", "recover", n, fix=True)
    assert fixed["size"] == n, fixed
    # Faust's "last offset" convention
    assert fixed["highwaters"] == {f"{changelog.topic}:0": n - 1}

    if listed == n:
        pytest.skip("the broker answered ListOffsets correctly: nothing to show without the fix")
    unfixed = workers.run("recover-unfixed", "recover", n, fix=False)
    assert unfixed["highwaters"] == {f"{changelog.topic}:0": listed - 1}
    assert unfixed["size"] < n, unfixed  # silently incomplete: recovery stopped at Tansu's answer


def test_a_stopped_first_member_leaves_its_group_so_the_next_joins_at_once(tmp_path):
    """Tansu's first generation is 0 and aiokafka skipped LeaveGroup for it: the next member then
    waited out the whole session timeout. With the fix the restart does not wait for it."""
    import time

    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.embedded.broker import EmbeddedKafka
    from streams.kafka.patches import install_leave_group_fix

    install_leave_group_fix()
    session_ms = 12_000

    async def joined_after(bootstrap: str) -> float:
        consumer = AIOKafkaConsumer("t", bootstrap_servers=bootstrap, group_id="g",
                                    session_timeout_ms=session_ms, heartbeat_interval_ms=1000,
                                    rebalance_timeout_ms=session_ms, auto_offset_reset="earliest")
        started = time.monotonic()
        await consumer.start()
        try:
            while not consumer.assignment():
                await consumer.getmany(timeout_ms=200)
            return time.monotonic() - started
        finally:
            await consumer.stop()

    async def scenario(bootstrap: str) -> float:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        await producer.send_and_wait("t", b"x")
        await producer.stop()
        await joined_after(bootstrap)  # first member, generation 0, then stopped
        return await joined_after(bootstrap)

    with EmbeddedKafka(log_path=tmp_path / "broker.log") as kafka:
        kafka.create_topics({"t": 1})
        second = asyncio.run(scenario(kafka.bootstrap))
    # Tansu holds every join for half the session timeout; without a clean leave the second member
    # also waits for the first one's session to expire (measured with 30 s: 54 s without the fix,
    # 15 s with it)
    assert second < session_ms / 1000 * 0.75, f"second member joined after {second:.1f} s"
