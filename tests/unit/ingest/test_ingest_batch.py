"""streams.ingest.normalise dead letters and ingest_batch, with property tests on hostile input
and PII."""
from __future__ import annotations

import base64
import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import DEFAULT_MAX_BYTES, DecodeError, encode_avro
from streams import config
from streams.ingest import normalise as ingest
from streams.ingest import pii
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS, readable_duration
from streams.ingest.normalise import (
    DEAD_LETTER_OVERSIZED_KEEP,
    dead_letter,
    decode_and_normalise,
    ingest_batch,
)
from tests.unit.ingest.cases import EXPECTED_EXAMPLE
from tests.unit.schemas.test_codec import EXAMPLE, variant

NOW = 1_795_200_000_000  # 2026-11-20T18:40:00Z


def at(event_time: int | str) -> bytes:
    """The design example as JSON bytes, at `event_time` (epoch ms or ISO 8601)."""
    return orjson.dumps(variant(event_time=event_time))


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
    assert dead[0]["reason"] == ("record of 2000002 bytes exceeds the "
                                 f"{DEFAULT_MAX_BYTES}-byte limit")
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


# --- event times ahead of the clock ---------------------------------------------------------------

def test_an_event_far_ahead_of_the_clock_is_dead_lettered_with_how_far():
    raw = at("2099-03-01T00:00:00Z")  # NOW is 2026-11-20T18:40:00Z
    good, dead = ingest_batch([(raw, "touchpoints", 2, 40)], now_ms=NOW)
    assert good == []
    assert dead == [{"reason": "event_time 2099-03-01T00:00:00Z is 26,399 days ahead of the clock "
                               "(PARCOURS_MAX_FUTURE_SECONDS=300)",
                     "error": "clock", "topic": "touchpoints", "partition": 2, "offset": 40,
                     "original": base64.b64encode(raw).decode(), "received_at": NOW}]


def test_the_tolerance_is_inclusive_and_applies_to_every_wire_form():
    raws = [(at(NOW + DEFAULT_MAX_FUTURE_MS), "t", 0, 0),           # exactly the tolerance: kept
            (at(NOW + DEFAULT_MAX_FUTURE_MS + 1), "t", 0, 1),       # one millisecond more: refused
            (encode_avro("touchpoint", variant(event_time=NOW + 3_600_000)), "t", 0, 2)]
    good, dead = ingest_batch(raws, now_ms=NOW)  # the default tolerance
    assert [tp["event_time"] for tp in good] == [NOW + DEFAULT_MAX_FUTURE_MS]
    assert [(d["offset"], d["reason"]) for d in dead] == [
        (1, "event_time 2026-11-20T18:45:00.001Z is 5 minutes 1 second ahead of the clock "
            "(PARCOURS_MAX_FUTURE_SECONDS=300)"),
        (2, "event_time 2026-11-20T19:40:00Z is 1 hour ahead of the clock "
            "(PARCOURS_MAX_FUTURE_SECONDS=300)")]


def test_the_tolerance_is_a_parameter():
    raws = [(at(NOW + 29_000), "t", 0, 0), (at(NOW + 31_000), "t", 0, 1), (at(NOW + 1), "t", 0, 2)]
    good, dead = ingest_batch(raws, now_ms=NOW, max_future_ms=30_000)
    assert [tp["event_time"] for tp in good] == [NOW + 29_000, NOW + 1]
    assert dead[0]["reason"].endswith("is 31 seconds ahead of the clock "
                                      "(PARCOURS_MAX_FUTURE_SECONDS=30)")
    _, dead = ingest_batch(raws, now_ms=NOW, max_future_ms=0)
    assert [d["offset"] for d in dead] == [0, 1, 2]


def test_historical_events_are_accepted_whatever_their_age():
    raws = [(at("2000-01-01T00:00:00Z"), "t", 0, 0), (at("2026-11-20T08:15:00+01:00"), "t", 0, 1),
            (at(NOW), "t", 0, 2)]
    good, dead = ingest_batch(raws, now_ms=NOW, max_future_ms=0)
    assert dead == [] and [tp["event_time"] for tp in good] == [946_684_800_000,
                                                                1_795_158_900_000, NOW]


def test_without_now_the_wall_clock_is_read_once_per_batch(monkeypatch):
    reads = []
    monkeypatch.setattr(ingest, "_now_ms", lambda: reads.append(NOW) or NOW)
    good, dead = ingest_batch([(at(NOW - 1), "t", 0, 0), (at(NOW + 3_600_000), "t", 0, 1),
                               (at(NOW + 7_200_000), "t", 0, 2)])
    assert reads == [NOW] and len(good) == 1
    assert [(d["error"], d["received_at"]) for d in dead] == [("clock", NOW), ("clock", NOW)]


@pytest.mark.parametrize("ms, text", [
    (1, "1 second"), (40_000, "40 seconds"), (59_999, "1 minute"), (90_000, "1 minute 30 seconds"),
    (300_001, "5 minutes 1 second"), (630_500, "11 minutes"), (11_520_000, "3 hours 12 minutes"),
    (190_800_001, "2 days 6 hours"), (2_308_521_600_005, "26,720 days"),
])
def test_durations_read_in_their_largest_units_rounded_up(ms, text):
    assert readable_duration(ms) == text


@pytest.mark.parametrize("value, expected", [
    (None, 300_000), ("", 300_000), ("30", 30_000), ("0.5", 500), ("0", 0), (" 3600 ", 3_600_000),
])
def test_the_max_future_setting_in_seconds_defaults_to_5_minutes(value, expected):
    env = {} if value is None else {"PARCOURS_MAX_FUTURE_SECONDS": value}
    assert config.load(env).max_future_ms == expected
    assert config.Settings("kafka://k:9092", "chdb:///x", ".").max_future_ms == 300_000


@pytest.mark.parametrize("value", ["5m", "-1", "nan", "inf", "300 s"])
def test_a_bad_max_future_setting_is_one_line_naming_it(value):
    with pytest.raises(config.ConfigError) as info:
        config.load({"PARCOURS_MAX_FUTURE_SECONDS": value})
    assert str(info.value) == (f"PARCOURS_MAX_FUTURE_SECONDS={value!r}: expected seconds, "
                               "0 or more (e.g. 300 for 5 minutes)")


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
        assert (isinstance(tp["event_time"], int) and isinstance(tp["channel"], str)
                and tp["channel"])
    for d in dead:
        assert d["error"] in {"decode", "format", "validation", "oversized", "clock"}, d["reason"]
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
