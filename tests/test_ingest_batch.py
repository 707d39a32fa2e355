"""streams.ingest dead letters and ingest_batch, with property tests on hostile input and PII."""
from __future__ import annotations

import base64
import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import DEFAULT_MAX_BYTES, DecodeError, encode_avro
from streams import ingest, pii
from streams.ingest import (
    DEAD_LETTER_OVERSIZED_KEEP,
    dead_letter,
    decode_and_normalise,
    ingest_batch,
)
from tests.ingest_cases import EXPECTED_EXAMPLE
from tests.test_codec import EXAMPLE, variant

NOW = 1_795_200_000_000


# --- dead letters --------------------------------------------------------------------------------

def test_dead_letter_record_shape():
    raw = b'{"event_id": x}'
    with pytest.raises(DecodeError) as info:
        decode_and_normalise(raw)
    dl = dead_letter(raw, info.value, topic="touchpoints", partition=3, offset=17, now_ms=NOW)
    assert dl == {"reason": "invalid JSON at byte 13: unexpected character, expected a JSON value",
                  "error": "decode", "topic": "touchpoints", "partition": 3, "offset": 17,
                  "original": base64.b64encode(raw).decode(), "received_at": NOW}
    assert orjson.loads(orjson.dumps(dl)) == dl


def test_dead_letter_of_unexpected_exception_is_internal():
    dl = dead_letter(b"{}", KeyError("boom\nsecond line"), now_ms=NOW)
    assert (dl["error"], dl["reason"]) == ("internal", "KeyError: 'boom\\nsecond line'")
    assert dl["topic"] is None and dl["partition"] is None and dl["offset"] is None


def test_dead_letter_of_oversized_record_keeps_a_prefix():
    raw = b"{" + b" " * 2_000_000 + b"}"
    _, dead = ingest_batch([(raw, "touchpoints", 0, 1)], now_ms=NOW)
    assert dead[0]["error"] == "oversized"
    assert dead[0]["reason"] == f"record of 2000002 bytes exceeds the {DEFAULT_MAX_BYTES}-byte limit"
    assert base64.b64decode(dead[0]["original"]) == raw[:DEAD_LETTER_OVERSIZED_KEEP]


def test_dead_letter_written_as_avro_after_decoding_original():
    from schemas.codec import decode_avro
    dl = dead_letter(b"\x7f", DecodeError("format", "unknown wire format: first byte 0x7f"),
                     topic="touchpoints", partition=0, offset=5, now_ms=NOW)
    avro_form = {**dl, "original": base64.b64decode(dl["original"])}
    assert decode_avro(encode_avro("dead_letter", avro_form)) == ("dead_letter", avro_form)


# --- ingest_batch --------------------------------------------------------------------------------

def test_ingest_batch_splits_and_keeps_order_and_positions():
    good_json = orjson.dumps(EXAMPLE)
    good_avro = encode_avro("touchpoint", variant(event_id="e-124"))
    raws = [
        (good_json, "touchpoints", 0, 10),
        (b"not json", "touchpoints", 0, 11),
        (good_avro, "touchpoints", 1, 7),
        (orjson.dumps(variant(event_id=...)), "touchpoints", 1, 8),
        (good_json, "touchpoints", 2, 3),  # duplicate event_id: kept, the pipeline dedupes
        (None, "touchpoints", 2, 4),  # tombstone
    ]
    good, dead = ingest_batch(raws, now_ms=NOW)
    assert [tp["event_id"] for tp in good] == ["e-123", "e-124", "e-123"]
    assert good[0] == EXPECTED_EXAMPLE
    assert [(d["error"], d["partition"], d["offset"]) for d in dead] == \
        [("format", 0, 11), ("validation", 1, 8), ("format", 2, 4)]
    assert dead[1]["reason"] == "missing field 'event_id'"
    assert dead[2]["reason"] == "empty record (0 bytes)"
    assert all(d["received_at"] == NOW and d["topic"] == "touchpoints" for d in dead)


def test_ingest_batch_turns_unexpected_errors_into_internal_dead_letters(monkeypatch):
    def boom(*_args):
        raise RuntimeError("channel table exploded")
    monkeypatch.setattr(ingest, "derive_channel", boom)
    good, dead = ingest_batch([(orjson.dumps(variant(channel=...)), "t", 0, 1),
                               (orjson.dumps(EXAMPLE), "t", 0, 2),
                               ("not a tuple",),  # a caller bug is reported, not raised
                               (12345, "t", 0, 3)])
    assert len(good) == 1
    assert [(d["error"], d["reason"]) for d in dead] == [
        ("internal", "RuntimeError: channel table exploded"),
        ("internal", "ValueError: not enough values to unpack (expected 4, got 1)"),
        ("internal", "TypeError: record value has type int, expected bytes"),
    ]
    assert dead[0]["original"] == base64.b64encode(orjson.dumps(variant(channel=...))).decode()


def test_ingest_batch_accepts_any_iterable_and_empty_input():
    assert ingest_batch([]) == ([], [])
    good, dead = ingest_batch(iter([(bytearray(orjson.dumps(EXAMPLE)), None, None, None)]))
    assert good == [EXPECTED_EXAMPLE] and dead == []


near_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64 - 1),
              st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


@st.composite
def hostile_records(draw) -> bytes:
    """Arbitrary bytes, arbitrary JSON, and mutated touchpoints in both wire formats."""
    choice = draw(st.integers(min_value=0, max_value=4))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return orjson.dumps(draw(near_json))
    record = copy.deepcopy(EXAMPLE)
    for key in draw(st.lists(st.sampled_from(sorted(EXAMPLE)), max_size=3)):
        record[key] = draw(near_json)
    if choice == 2:
        return orjson.dumps(record)
    raw = encode_avro("touchpoint", EXAMPLE)
    if choice == 3:  # flip and cut bytes of a valid Avro record
        data = bytearray(raw)
        for pos in draw(st.lists(st.integers(min_value=0, max_value=len(data) - 1), max_size=4)):
            data[pos] = draw(st.integers(min_value=0, max_value=255))
        return bytes(data[: draw(st.integers(min_value=0, max_value=len(data)))])
    return raw[:5] + draw(st.binary(max_size=80))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(hostile_records(), max_size=12))
def test_ingest_batch_never_raises_and_accounts_for_every_record(raws):
    batch = [(raw, "touchpoints", 0, i) for i, raw in enumerate(raws)]
    good, dead = ingest_batch(batch)
    assert len(good) + len(dead) == len(raws)
    for tp in good:
        assert list(tp) == list(EXPECTED_EXAMPLE)  # exactly the normalised shape
        assert isinstance(tp["event_time"], int) and isinstance(tp["channel"], str) and tp["channel"]
    for d in dead:
        assert d["error"] in {"decode", "format", "validation", "oversized"}, d["reason"]
        assert d["reason"] and "\n" not in d["reason"]
        assert base64.b64decode(d["original"]) == raws[d["offset"]]


local_part = st.builds(str.__add__, st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789"),
                       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+", max_size=12))
emails = st.builds(lambda local, domain, upper: (f"{local}@{domain}".upper() if upper
                                                  else f"{local}@{domain}"),
                   local_part,
                   st.sampled_from(["example.com", "gmail.com", "mail.example.fr"]),
                   st.booleans())
phones = st.one_of(
    st.builds(lambda d: "0" + d[0] + " " + " ".join(d[i:i + 2] for i in range(1, 9, 2)),
              st.text(alphabet="123456789", min_size=9, max_size=9)),
    st.builds(lambda cc, rest: f"+{cc} {rest}", st.sampled_from(["33", "44", "1", "49"]),
              st.text(alphabet="0123456789", min_size=8, max_size=10)),
)


@settings(max_examples=300)
@given(email=emails, phone=phones, as_user=st.booleans(), in_url=st.booleans())
def test_raw_email_and_phone_never_reach_the_output(email, phone, as_user, in_url):
    ids = {"email": email, "phone": phone, "cookie": "c-9"}
    if as_user:
        ids["user"] = email
    context = {"url": f"https://brand.example/?e={email}" if in_url else "https://brand.example/"}
    good, dead = ingest_batch([(orjson.dumps(variant(ids=ids, context=context)), "t", 0, 0)])
    assert dead == [] and len(good) == 1
    out = orjson.dumps(good[0]).decode().lower()
    for secret in {email, pii.normalise_email(email), phone, pii.normalise_phone(phone)}:
        assert secret.lower() not in out
    assert good[0]["ids"]["email"] == pii.sha256_hex(pii.normalise_email(email))
    assert good[0]["ids"]["phone"] == pii.sha256_hex(pii.normalise_phone(phone))
