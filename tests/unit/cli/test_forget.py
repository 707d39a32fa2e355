"""The erasure protocol (streams/worker/forget.py): the request the worker reads, and the
confirmation recognised by decoding the identity event it answers with."""
from __future__ import annotations

import orjson
import pytest

from streams.cli.common import CliError
from streams.cli.forget import parse_identifier
from streams.config import Topics
from streams.ingest.normalise import ingest_batch
from streams.ingest.pii import hash_identifier
from streams.pipeline import Pipeline
from streams.worker.forget import confirmation, forget_request, new_request_id
from streams.worker.outputs import journey_records
from streams.worker.shell import CONTROL

TOPICS = Topics()


def identity_values(out) -> list[bytes]:
    records, _sink = journey_records(out, TOPICS, 0)
    return [value for topic, _key, value in records if topic == TOPICS.identity]


def test_the_request_is_one_control_record_the_journey_applies():
    request_id = new_request_id()
    [item] = orjson.loads(forget_request("email:abc", request_id, requested_at=42))
    assert item == {CONTROL: "forget", "identifier": "email:abc", "request_id": request_id,
                    "requested_at": 42}
    assert request_id.startswith("forget-") and new_request_id() != request_id


def test_the_confirmation_is_the_forget_event_of_that_request():
    pipeline = Pipeline()
    ids = [{"cookie": "c-9"}, {"email": "martin@example.com"},
           {"email": "martin@example.com", "cookie": "c-9"}]  # two profiles, then a merge
    good, _ = ingest_batch([(orjson.dumps({
        "event_id": f"e{i}", "event_time": f"2026-11-02T07:0{i}:00Z", "type": "page_view",
        "channel": "web", "ids": these}), "t", 0, i) for i, these in enumerate(ids)])
    pipeline.process(good)
    merges = identity_values(pipeline.end_of_input())  # no touchpoint held any more
    assert [orjson.loads(v)["kind"] for v in merges] == ["merge"]
    email = f"email:{hash_identifier('email', 'martin@example.com')}"
    request_id = new_request_id()
    [answer] = identity_values(pipeline.forget(email, request_id=request_id))
    event = confirmation(answer, request_id)
    assert event["kind"] == "forget" and event["survivor"].startswith("p-")
    assert email in event["identifiers"]
    assert confirmation(answer, new_request_id()) is None  # another request's answer
    [nobody] = identity_values(pipeline.forget("loyalty:NOBODY", request_id=request_id))
    assert confirmation(nobody, request_id)["survivor"] == ""
    # not answers: the identity events of touchpoints, tombstones, anything that is not JSON,
    # an event of another kind carrying the request id, and a value that merely says "forget"
    for value in [*merges, None, b"", b"forget", b"[1, 2]",
                  orjson.dumps({"kind": "merge", "event_id": request_id}),
                  orjson.dumps({"kind": "merge", "reason": "forget", "event_id": "e1"})]:
        assert confirmation(value, request_id) is None


@pytest.mark.parametrize("text, key", [
    ("email: Martin@Example.com ", f"email:{hash_identifier('email', 'martin@example.com')}"),
    ("LOYALTY:L-77", "loyalty:L-77"),
])
def test_identifiers_are_keyed_as_the_identity_graph_keys_them(text, key):
    assert parse_identifier(text) == key


@pytest.mark.parametrize("text, fragment", [("martin", "TYPE:VALUE"), ("email:", "TYPE:VALUE"),
                                            ("email:not-an-email", "not a valid email")])
def test_a_bad_identifier_is_one_line(text, fragment):
    with pytest.raises(CliError, match=fragment):
        parse_identifier(text)
