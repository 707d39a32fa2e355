"""The erasure protocol of the worker: a forget request and the worker's confirmation of it.

A request is one control record on the stitch topic, a JSON array like every stitch message:
`[{CONTROL: "forget", "identifier": "type:value", "request_id": ..., "requested_at": ms}]`
(email and phone hashed, as the identity graph keys them). The journey agent applies it in order
with the touchpoints (`Shell._run` -> `Pipeline.forget`) and answers on the identity topic with one
identity event of kind `forget` whose `event_id` is the request id: `survivor` is the erased
profile (empty when no profile held the identifier), `identifiers` the identifiers it held.
`request_forget` sends a request and waits for that answer (`parcours forget`).
"""
from __future__ import annotations

import time
import uuid

import orjson

from streams.errors import ServiceError
from streams.kafka.clients import KafkaClients
from streams.worker.shell import CONTROL


class ForgetNotConfirmed(ServiceError):
    """No worker confirmed the erasure in time; the request stays queued on the stitch topic."""


def new_request_id() -> str:
    return f"forget-{uuid.uuid4()}"


def forget_request(identifier: str, request_id: str, requested_at: int | None = None) -> bytes:
    """The stitch-topic message asking the worker to erase the profile holding `identifier`."""
    at = int(time.time() * 1000) if requested_at is None else requested_at
    return orjson.dumps([{CONTROL: "forget", "identifier": identifier, "request_id": request_id,
                          "requested_at": at}])


def confirmation(value: bytes | None, request_id: str) -> dict | None:
    """The worker's answer to `request_id` when the identity-topic record `value` is it."""
    if not value or request_id.encode() not in value:  # a tombstone, or another event (cheap)
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(event, dict) and event.get("kind") == "forget" \
            and event.get("event_id") == request_id:
        return event
    return None


async def request_forget(clients: KafkaClients, topics, identifier: str,
                         wait: float) -> dict | None:
    """Ask the worker to erase the profile holding `identifier`; wait up to `wait` seconds for its
    confirmation (the `forget` identity event) and return it. With `wait` <= 0, send and return
    None. ForgetNotConfirmed when no worker answered in time."""
    request_id = new_request_id()
    producer = clients.producer()
    await producer.start()
    try:
        await producer.send_and_wait(topics.stitch, forget_request(identifier, request_id))
    finally:
        await producer.stop()
    if wait <= 0:
        return None
    consumer = clients.consumer(topics.identity, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    event = confirmation(record.value, request_id)
                    if event is not None:
                        return event
        raise ForgetNotConfirmed(f"forget: no worker confirmed the erasure within {wait:.0f} s "
                                 f"(request {request_id} is queued on {topics.stitch})")
    finally:
        await consumer.stop()
