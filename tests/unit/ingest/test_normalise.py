"""streams.ingest.normalise normalise: event time, type and channel, campaign, ids, context,
properties."""
from __future__ import annotations

import copy
import math

import orjson
import pytest

from schemas.codec import DecodeError, encode_avro
from streams.ingest import normalise as ingest
from streams.ingest.normalise import InvalidTouchpoint, decode_and_normalise, normalise
from tests.unit.ingest.cases import EXPECTED_EXAMPLE, MARTIN_EMAIL_SHA, MARTIN_PHONE_SHA
from tests.unit.schemas.test_codec import EXAMPLE, variant


def norm(**changes) -> dict:
    return decode_and_normalise(orjson.dumps(variant(**changes)))


def refusal(raw: bytes) -> tuple[str, str]:
    with pytest.raises(DecodeError) as info:
        decode_and_normalise(raw)
    return info.value.kind, info.value.reason


# --- normalise -----------------------------------------------------------------------------------

def test_design_example_normalises_to_the_internals_shape():
    assert decode_and_normalise(orjson.dumps(EXAMPLE)) == EXPECTED_EXAMPLE
    assert normalise(copy.deepcopy(EXAMPLE)) == EXPECTED_EXAMPLE  # not pre-validated: checks itself


def test_avro_input_normalises_like_the_json_form():
    assert decode_and_normalise(encode_avro("touchpoint", EXAMPLE)) == EXPECTED_EXAMPLE
    minimal = {"event_id": "e-2", "event_time": 1_795_158_900_000, "type": "App_Open"}
    assert decode_and_normalise(encode_avro("touchpoint", minimal)) == \
        decode_and_normalise(orjson.dumps(minimal)) == {
            "event_id": "e-2", "event_time": 1_795_158_900_000, "type": "app_open",
            "channel": "app", "campaign": None, "publisher": None, "ids": {}, "context": {},
            "properties": {}}


def test_normalise_does_not_mutate_its_input():
    record = copy.deepcopy(EXAMPLE)
    normalise(record)
    assert record == EXAMPLE


@pytest.mark.parametrize("event_time,expected", [
    ("2026-11-20T08:15:00+01:00", 1_795_158_900_000),
    ("2026-11-20T07:15:00Z", 1_795_158_900_000),
    ("2026-11-20T07:15:00.999999+00:00", 1_795_158_900_999),  # floored to the millisecond
    ("2026-11-19T23:15:00-08:00", 1_795_158_900_000),
    (" 2026-11-20T07:15:00Z ", 1_795_158_900_000),
    (1_795_158_900_000, 1_795_158_900_000),
    (946_684_800_000, 946_684_800_000),  # 2000-01-01T00:00:00Z, first accepted instant
])
def test_event_time_forms(event_time, expected):
    assert norm(event_time=event_time)["event_time"] == expected


@pytest.mark.parametrize("event_time,reason", [
    ("2026-11-20T08:15:00",
     "field 'event_time' '2026-11-20T08:15:00' has no UTC offset (add 'Z' or '+01:00')"),
    ("2026-11-20", "field 'event_time' '2026-11-20' has no UTC offset (add 'Z' or '+01:00')"),
    ("yesterday", "field 'event_time' 'yesterday' is not an ISO 8601 timestamp"),
    ("1795158900000", "field 'event_time' '1795158900000' is not an ISO 8601 timestamp "
                      "(epoch milliseconds must be a JSON number)"),
    (1_795_158_900, "field 'event_time' 1795158900 is outside years 2000-2100 as epoch "
                    "milliseconds; it looks like seconds, send milliseconds"),
    (-5, "field 'event_time' -5 is outside years 2000-2100 as epoch milliseconds"),
    (4_102_444_800_000, "field 'event_time' 4102444800000 is outside years 2000-2100 as epoch "
                        "milliseconds"),
    ("1999-12-31T23:59:59Z", "field 'event_time' '1999-12-31T23:59:59Z' is outside years "
                             "2000-2100"),
    (True, "field 'event_time' has type bool, expected long or string"),
])
def test_bad_event_times_are_refused_with_a_reason(event_time, reason):
    assert refusal(orjson.dumps(variant(event_time=event_time))) == ("validation", reason)


def test_naive_timestamp_raises_invalid_touchpoint():
    with pytest.raises(InvalidTouchpoint) as info:
        normalise(variant(event_time="2026-11-20T08:15:00"))
    assert info.value.kind == "validation" and isinstance(info.value, DecodeError)


def test_normalise_checks_types_unless_told_they_were_checked():
    with pytest.raises(InvalidTouchpoint, match="^missing field 'event_id'$"):
        normalise(variant(event_id=...))
    with pytest.raises(InvalidTouchpoint, match="expected a JSON object, got an array"):
        normalise([1, 2])  # type: ignore[arg-type]


def test_type_and_channel_are_trimmed_and_lower_cased():
    tp = norm(type="  Price_View ", channel=" Web ")
    assert (tp["type"], tp["channel"]) == ("price_view", "web")
    assert refusal(orjson.dumps(variant(type="   "))) == ("validation", "field 'type' is empty")


@pytest.mark.parametrize("channel", [None, "", "   ", ...])
def test_missing_or_blank_channel_is_derived(channel):
    assert norm(channel=channel)["channel"] == "display"  # utm_medium=display in the example URL


def test_campaign_and_publisher_fall_back_to_utm_then_referrer():
    url = "https://brand.example/suv?utm_source=autonews&utm_campaign=winter-suv&utm_medium=display"
    tp = norm(campaign=None, publisher=" ", context={"url": url, "referrer": "https://news.example/a"})
    assert (tp["campaign"], tp["publisher"]) == ("winter-suv", "autonews")
    tp = norm(campaign=..., publisher=..., context={"url": "https://brand.example/suv",
                                                    "referrer": "https://www.autonews.example/x"})
    assert (tp["campaign"], tp["publisher"]) == (None, "autonews.example")
    # navigation inside the brand's own site names no publisher
    tp = norm(publisher=..., context={"url": "https://brand.example/b",
                                      "referrer": "https://shop.brand.example/a"})
    assert tp["publisher"] is None
    # the event's own values win
    assert norm()["campaign"] == "winter-suv" and norm()["publisher"] == "autonews.example"


def test_ids_are_hashed_normalised_and_cleaned():
    tp = norm(ids={" Email ": " Martin@Example.COM ", "PHONE": "06 00 00 00 00",
                   "cookie": " c-9 ", "device": None, "loyalty": "", "": "x"})
    assert tp["ids"] == {"email": MARTIN_EMAIL_SHA, "phone": MARTIN_PHONE_SHA, "cookie": "c-9"}


def test_unusable_and_prehashed_pii_ids():
    prehashed = MARTIN_EMAIL_SHA.upper()
    tp = norm(ids={"email": prehashed, "phone": "n/a", "user": "u-1"})
    assert tp["ids"] == {"email": MARTIN_EMAIL_SHA, "user": "u-1"}  # "n/a" would stitch strangers


def test_anonymous_event_is_valid():
    assert norm(ids=...)["ids"] == {}
    assert norm(ids={})["ids"] == {}
    assert norm(ids=None)["ids"] == {}


def test_email_used_as_another_identifier_or_in_a_url_is_hashed():
    tp = norm(ids={"user": "Martin@Example.com"},
              context={"url": "https://brand.example/?email=martin%40example.com&utm_medium=email",
                       "referrer": None})
    assert tp["ids"] == {"user": MARTIN_EMAIL_SHA}
    assert tp["context"] == {
        "url": f"https://brand.example/?email={MARTIN_EMAIL_SHA}&utm_medium=email"}
    assert tp["channel"] == "web"  # the event says web; derivation is only for missing channels
    tp = norm(properties={"customer": {"contacts": ["x", "Martin@Example.com"]}})
    assert tp["properties"] == {"customer": {"contacts": ["x", MARTIN_EMAIL_SHA]}}


def test_deeply_nested_extra_fields_are_refused_not_crashing():
    head = orjson.dumps(variant(context=...))[:-1]  # orjson.dumps itself stops at 254 levels
    raw = head + b', "context": {"extra": ' + b"[" * 900 + b"]" * 900 + b"}}"
    assert refusal(raw) == ("validation", f"field 'context.extra' nests deeper than "
                                          f"{ingest.MAX_NESTING} levels")
    norm(context={"extra": [[["ok"]]]})


def test_context_and_properties_copied_without_nulls():
    tp = norm(context=None, properties=None)
    assert (tp["context"], tp["properties"]) == ({}, {})
    tp = norm(context={"store_id": "paris-15", "tz": None, "floor": 2},
              properties={"revenue": 32900, "sku": "X-1", "order_id": None, "channel": " Push "})
    assert tp["context"] == {"store_id": "paris-15", "floor": 2}
    assert tp["properties"] == {"revenue": 32900.0, "sku": "X-1", "channel": "push"}
    assert type(tp["properties"]["revenue"]) is float


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_revenue_is_refused(bad):
    raw = encode_avro("touchpoint", variant(properties={"revenue": bad}))  # JSON cannot carry these
    assert refusal(raw) == ("validation", "field 'properties.revenue' is not a finite number")
    with pytest.raises(InvalidTouchpoint, match="properties.revenue"):
        normalise(variant(properties={"revenue": bad}))
    with pytest.raises(InvalidTouchpoint, match="properties.revenue"):
        normalise(variant(properties={"revenue": 10**400}))
