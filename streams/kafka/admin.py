"""Creating topics over the Kafka admin protocol and waiting until every partition has a leader.

Used on the embedded broker (`EmbeddedKafka.create_topics`), by the demo, the benchmark and tests.
`connection` is a `KafkaClients` (streams/kafka/clients.py) or the brokers alone (PLAINTEXT).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Mapping

from streams.kafka.clients import KafkaClients

__all__ = ["acreate_topics", "create_topics"]


def create_topics(connection: KafkaClients | str, topics: Mapping[str, int], *,
                  timeout: float = 15.0) -> None:
    """Create topics `{name: partitions}` (replication 1) and wait until every partition has a
    leader. A topic that already exists is accepted when it has at least that many partitions."""
    if not topics:
        return
    coro_factory = lambda: acreate_topics(connection, topics, timeout=timeout)  # noqa: E731
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro_factory())
        return
    # Called from inside an event loop: run on a private loop in another thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro_factory()).result()


async def acreate_topics(connection: KafkaClients | str, topics: Mapping[str, int], *,
                         timeout: float = 15.0) -> None:
    """The coroutine form of `create_topics`."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError, for_code

    wanted = {str(name): int(n) for name, n in topics.items()}
    for name, n in wanted.items():
        if n < 1:
            raise ValueError(f"topic {name!r}: partitions must be >= 1, not {n}")
    admin = KafkaClients.at(connection).admin(request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in wanted.items()],
            timeout_ms=int(timeout * 1000),
        )
        existing: set[str] = set()
        for name, code, *rest in response.topic_errors:
            error = for_code(code)
            if error is TopicAlreadyExistsError:
                existing.add(name)
            elif code != 0:
                message = rest[0] if rest and rest[0] else error.__name__
                raise RuntimeError(f"cannot create topic {name!r}: {message}")
        deadline = time.monotonic() + timeout
        while True:
            missing = await _partitions_without_leader(admin, wanted)
            too_small = sorted(set(missing) & existing)
            if too_small:
                raise RuntimeError(
                    f"topics already exist with fewer partitions than asked: "
                    f"{ {name: missing[name] for name in too_small} }"
                )
            if not missing:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(f"topics not ready after {timeout:g}s: {missing}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def _partitions_without_leader(admin, wanted: Mapping[str, int]) -> dict[str, str]:
    described = {t["topic"]: t for t in await admin.describe_topics(list(wanted))}
    missing: dict[str, str] = {}
    for name, n in wanted.items():
        topic = described.get(name)
        if topic is None or topic.get("error_code", 0) != 0:
            missing[name] = "unknown"
            continue
        with_leader = [p for p in topic["partitions"] if p.get("leader", -1) >= 0]
        if len(with_leader) < n:
            missing[name] = f"{len(with_leader)}/{n} partitions with a leader"
    return missing
