"""The erasure protocol of the worker: a forget request and the worker's confirmation of it.

A request is one control record on the stitch topic, a JSON array like every stitch message:
`[{CONTROL: "forget", "identifier": "type:value", "request_id": ..., "requested_at": ms}]`
(email and phone hashed, as the identity graph keys them). The sequencer applies it in order
with the touchpoints (`SequencerShell._run` -> `Sequencer.forget`; the profile's shard then
drops its state and queues the rows' erasure after its own rows) and answers on the identity
topic with one identity event of kind `forget` whose `event_id` is the request id: `survivor` is
the erased profile (empty when no profile held the identifier), `identifiers` the identifiers it
held.
The rows already in ClickHouse are deleted by the sink stage, after every row sent before the
erasure (streams/worker/sink_stage.py); it confirms with an identity event of kind `erased`, keyed
and identified (`event_id`) by the request id, with the rows `matched` per table (no personal data).
`request_forget` sends a request and waits for both answers (`parcours forget`).
"""
from __future__ import annotations

import time
import uuid

import orjson

from streams.errors import ServiceError
from streams.kafka.clients import KafkaClients
from streams.worker.shell import CONTROL


class ForgetNotConfirmed(ServiceError):
    """No worker confirmed the erasure in time; the request stays queued (on the stitch topic, or
    for ClickHouse on the sink topic) and is carried out when the worker gets to it."""


def new_request_id() -> str:
    return f"forget-{uuid.uuid4()}"


def forget_request(identifier: str, request_id: str, requested_at: int | None = None) -> bytes:
    """The stitch-topic message asking the worker to erase the profile holding `identifier`."""
    at = int(time.time() * 1000) if requested_at is None else requested_at
    return orjson.dumps([{CONTROL: "forget", "identifier": identifier, "request_id": request_id,
                          "requested_at": at}])


def confirmation(value: bytes | None, request_id: str, kind: str = "forget") -> dict | None:
    """The worker's answer to `request_id` when the identity-topic record `value` is it (`kind`:
    `forget` from the journey, `erased` from the sink stage)."""
    if not value or request_id.encode() not in value:  # a tombstone, or another event (cheap)
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if isinstance(event, dict) and event.get("kind") == kind \
            and event.get("event_id") == request_id:
        return event
    return None


async def request_forget(clients: KafkaClients, topics, identifier: str,
                         wait: float) -> dict | None:
    """Ask the worker to erase the profile holding `identifier`; wait up to `wait` seconds for its
    confirmations (the `forget` identity event, then, when a profile was erased, the sink stage's
    `erased`) and return the first, with `erased` set to the rows matched per table. With `wait`
    <= 0, send and return None. ForgetNotConfirmed when no worker answered in time."""
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
        forgotten = None
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if forgotten is None:
                        forgotten = confirmation(record.value, request_id)
                        if forgotten is not None and not forgotten["survivor"]:
                            return forgotten  # no profile: nothing in ClickHouse either
                    else:
                        erased = confirmation(record.value, request_id, "erased")
                        if erased is not None:
                            return {**forgotten, "erased": erased.get("matched") or {}}
        if forgotten is not None:
            raise ForgetNotConfirmed(
                f"forget: profile {forgotten['survivor']} erased from the worker's state and "
                f"topics, but ClickHouse has not confirmed within {wait:.0f} s (the sink stage "
                f"is behind; the erasure is queued on {topics.sink})")
        raise ForgetNotConfirmed(f"forget: no worker confirmed the erasure within {wait:.0f} s "
                                 f"(request {request_id} is queued on {topics.stitch})")
    finally:
        await consumer.stop()
