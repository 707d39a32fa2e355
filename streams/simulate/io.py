"""Sinks for simulated events: a JSONL file (`write_jsonl`) or a Kafka topic (`produce`, its
records keyed by `partition_key`).

Nothing here imports Kafka at module level: `produce` builds its producer with the Kafka client
factory (streams/kafka/clients.py), which imports aiokafka when it is called."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from streams.kafka.clients import KafkaClients


def _encode(event: dict | bytes) -> bytes:
    if isinstance(event, (bytes, bytearray, memoryview)):
        return bytes(event)
    return orjson.dumps(event)


def write_jsonl(events: Iterable[dict | bytes], path: str | os.PathLike) -> int:
    """Write one JSON document per line (orjson); returns the number of lines.

    Items may also be raw bytes (e.g. from `malformed_events`), written as they are; a bytes item
    containing a line break is refused. The file appears atomically (written aside, then
    renamed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(tmp, "wb", buffering=1 << 20) as fh:
            write = fh.write
            for event in events:
                line = _encode(event)
                if b"\n" in line or b"\r" in line:
                    raise ValueError(f"record {count} contains a line break: not JSONL-safe")
                write(line)
                write(b"\n")
                count += 1
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


_PERSONAL_ID_TYPES = frozenset({"email", "phone"})


def partition_key(event: dict | bytes, key_field: str | None) -> bytes | None:
    """The Kafka key a producer would use.

    By default the event's first identifier, so one browser, device or account stays on one
    partition; raw personal identifiers (email, phone) are passed over when the event has another
    one, as a careful producer keeps them out of keys (keys show up in tooling and logs). With
    `key_field`: that top-level field (e.g. "event_id"), else that identifier type (e.g. "user").
    Bytes records and events without a usable value get no key (the partitioner spreads them)."""
    if not isinstance(event, dict):
        return None
    ids = event.get("ids")
    if key_field is None:
        if not isinstance(ids, dict):
            return None
        fallback = None
        for id_type, value in ids.items():
            if value is None or value == "":
                continue
            if id_type not in _PERSONAL_ID_TYPES:
                return str(value).encode()
            if fallback is None:
                fallback = value
        return None if fallback is None else str(fallback).encode()
    value = event.get(key_field)
    if value is None and isinstance(ids, dict):
        value = ids.get(key_field)
    return None if value is None or value == "" else str(value).encode()


async def produce(events: Iterable[dict | bytes], connection: KafkaClients | str, topic: str, *,
                  key_field: str | None = None, linger_ms: int = 5,
                  max_batch_size: int = 256 * 1024, window: int = 20_000,
                  client_options: dict | None = None) -> int:
    """Send `events` (dicts as JSON, bytes as they are) to `topic`; returns how many were acked.

    `connection` is a `KafkaClients` (the brokers and their TLS / SASL options), or the brokers
    alone ("host:port[,host:port]" or a `kafka://` URL: PLAINTEXT); `client_options` (aiokafka
    keyword arguments, e.g. a security protocol) go on top. Records are keyed by
    `partition_key(event, key_field)`. Sends are pipelined (at most `window` in flight) and every
    one is awaited before returning; the first failed send raises. Plain at-least-once producer
    (no idempotence: the embedded Tansu broker rejects it)."""
    from streams.kafka.clients import KafkaClients  # aiokafka only when the client is built

    producer = KafkaClients.at(connection).producer(
        client_id="parcours-simulate", linger_ms=linger_ms, max_batch_size=max_batch_size,
        acks="all", enable_idempotence=False, **(client_options or {}))
    await producer.start()
    count = 0
    try:
        pending = []
        for event in events:
            pending.append(await producer.send(topic, _encode(event),
                                               key=partition_key(event, key_field)))
            if len(pending) >= window:
                for future in pending:
                    await future
                count += len(pending)
                pending.clear()
        await producer.flush()
        for future in pending:
            await future
        count += len(pending)
    finally:
        await producer.stop()
    return count
