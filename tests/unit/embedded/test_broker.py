"""The embedded Tansu broker: it starts, answers Kafka clients, and never outlives its owner."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.embedded import broker as embedded
from streams.embedded.broker import BrokerStartError, EmbeddedKafka, free_port

REPO = Path(__file__).resolve().parents[3]


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka 0.14: stopping a group-less consumer before its first await raises CancelledError
    # (its NoGroupCoordinator task is cancelled before it ever ran); give that task one loop turn.
    await asyncio.sleep(0)
    await consumer.stop()


def process_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a killed broker may linger as one until
    reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - non-Linux fallback
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)


@pytest.fixture(scope="module")
def kafka():
    with EmbeddedKafka() as broker:
        yield broker


def test_broker_answers_on_its_advertised_address(kafka):
    assert kafka.running
    host, port = kafka.bootstrap.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) == kafka.port
    assert kafka.url == f"kafka://127.0.0.1:{kafka.port}"

    async def metadata():
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        await admin.start()
        try:
            return await admin.describe_cluster()
        finally:
            await admin.close()

    cluster = asyncio.run(metadata())
    assert cluster["cluster_id"] == kafka.cluster_id
    assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [("127.0.0.1", kafka.port)]


def test_create_topics_with_partitions(kafka):
    kafka.create_topics({"embedded.orders": 4, "embedded.single": 1})
    kafka.create_topics({"embedded.orders": 4})  # already there with enough partitions: accepted

    async def partitions():
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
        await consumer.start()
        try:
            return {t: consumer.partitions_for_topic(t)
                    for t in ("embedded.orders", "embedded.single")}
        finally:
            await stop_consumer(consumer)

    assert asyncio.run(partitions()) == {"embedded.orders": {0, 1, 2, 3}, "embedded.single": {0}}
    with pytest.raises(RuntimeError, match="fewer partitions"):
        kafka.create_topics({"embedded.single": 3}, timeout=2)


def test_create_topics_from_inside_an_event_loop(kafka):
    async def inside():
        kafka.create_topics({"embedded.from-loop": 2})  # sync call while a loop runs in this thread
        await kafka.acreate_topics({"embedded.from-loop-async": 1})

    asyncio.run(inside())


def test_produce_consume_round_trip(kafka):
    topic = "embedded.round-trip"
    kafka.create_topics({topic: 3})
    sent = [(f"k{i}".encode(), f"v{i}".encode()) for i in range(300)]

    async def round_trip():
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(topic, key=k, value=v) for k, v in sent]
            metadata = await asyncio.gather(*futures)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=kafka.bootstrap, group_id="embedded-round-trip",
            auto_offset_reset="earliest", enable_auto_commit=False,
            # Tansu holds a group join for half the session timeout: keep it short.
            session_timeout_ms=2000, heartbeat_interval_ms=500, rebalance_timeout_ms=2000,
        )  # fmt: skip
        await consumer.start()
        received = []
        try:
            deadline = time.monotonic() + 20
            while len(received) < len(sent) and time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                received += [(r.key, r.value) for records in batches.values() for r in records]
        finally:
            await stop_consumer(consumer)
        return metadata, received

    metadata, received = asyncio.run(round_trip())
    assert {m.partition for m in metadata} == {0, 1, 2}  # keys spread over the partitions
    assert sorted(received) == sorted(sent)


def test_stop_leaves_no_process_and_is_idempotent():
    broker = EmbeddedKafka().start()
    pid, log_dir = broker.pid, broker.log_path.parent
    assert process_alive(pid)
    broker.stop()
    assert not process_alive(pid)
    assert not log_dir.exists()  # private temp dir removed
    broker.stop()
    assert broker.pid is None and not broker.running
    with pytest.raises(RuntimeError, match="not started"):
        broker.bootstrap


def test_context_manager_stops_on_error():
    with pytest.raises(ZeroDivisionError):
        with EmbeddedKafka() as broker:
            pid = broker.pid
            1 / 0
    assert not process_alive(pid)


def test_explicit_port_in_use_is_a_readable_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = EmbeddedKafka(port, log_path=tmp_path / "broker.log", start_timeout=10)
        with pytest.raises(BrokerStartError) as info:
            broker.start()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "Address in use" in message  # the tail of the broker log is in the error
    assert not broker.running


def test_port_race_is_retried_on_a_new_port(monkeypatch):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = iter([taken])
        real_free_port = embedded.free_port
        # The first "free" port is taken by the time the broker binds it, as in a real race.
        monkeypatch.setattr(embedded, "free_port",
                            lambda host="127.0.0.1": next(ports, None) or real_free_port(host))
        with EmbeddedKafka() as broker:
            assert broker.port != taken
            assert broker.running


def test_broker_dies_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "owner.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys, time
            sys.path.insert(0, {str(REPO)!r})
            from streams.embedded.broker import EmbeddedKafka
            # The log goes to the test's tmp dir: a SIGKILLed owner cannot remove its own temp dir.
            broker = EmbeddedKafka(log_path={str(tmp_path / "broker.log")!r}).start()
            print(broker.pid, broker.bootstrap, flush=True)
            time.sleep(120)
            """
        )
    )
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    broker_pid = None
    try:
        line = owner.stdout.readline()
        assert line, f"the owner process printed nothing (exit status {owner.poll()})"
        broker_pid = int(line.split()[0])
        assert process_alive(broker_pid)
        os.kill(owner.pid, signal.SIGKILL)  # no atexit, no finalizer: only the kernel can help
        owner.wait(timeout=10)
        assert wait_gone(broker_pid, timeout=5), "the broker outlived its SIGKILLed parent"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()
        if broker_pid is not None and process_alive(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)


def test_broker_started_off_the_main_thread_outlives_that_thread():
    # PR_SET_PDEATHSIG fires when the forking *thread* exits: the broker must survive its starter.
    started: list[EmbeddedKafka] = []
    starter = threading.Thread(target=lambda: started.append(EmbeddedKafka().start()))
    starter.start()
    starter.join()
    broker = started[0]
    try:
        time.sleep(0.3)
        assert process_alive(broker.pid)
        with socket.create_connection(("127.0.0.1", broker.port), timeout=2):
            pass
    finally:
        pid = broker.pid
        broker.stop()
    assert not process_alive(pid)


def test_module_entry_point_runs_in_foreground(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "streams.embedded.broker", "--topic", "dev.events:2"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("kafka://127.0.0.1:"), (
            proc.stderr.read() if proc.poll() is not None else url)
        info = proc.stderr.readline()
        broker_pid = int(info.split("pid ")[1].split(",")[0])
        assert process_alive(broker_pid)
        host, port = url.removeprefix("kafka://").split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass

        async def partitions():
            consumer = AIOKafkaConsumer(bootstrap_servers=f"{host}:{port}")
            await consumer.start()
            try:
                return consumer.partitions_for_topic("dev.events")
            finally:
                await stop_consumer(consumer)

        assert asyncio.run(partitions()) == {0, 1}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not process_alive(broker_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_free_port_is_bindable():
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_topic_partitions_are_reported_by_offsets(kafka):
    # Sanity check used by the recovery tests: an empty new partition has end offset 0.
    kafka.create_topics({"embedded.empty": 2})

    async def ends():
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition("embedded.empty", p) for p in (0, 1)]
            return await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        finally:
            await stop_consumer(consumer)

    beginning, end = asyncio.run(ends())
    assert set(beginning.values()) == {0} and set(end.values()) == {0}
