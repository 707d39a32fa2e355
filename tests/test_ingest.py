"""streams.ingest (normalise, dead letters, ingest_batch), streams.pii and streams.channels."""
from __future__ import annotations

import base64
import copy
import hashlib
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import DEFAULT_MAX_BYTES, DecodeError, encode_avro
from streams import ingest, pii
from streams.channels import (
    campaign_params,
    derive_channel,
    has_campaign_params,
    referrer_host,
    utm_params,
)
from streams.ingest import (
    DEAD_LETTER_OVERSIZED_KEEP,
    InvalidTouchpoint,
    dead_letter,
    decode_and_normalise,
    ingest_batch,
    normalise,
)
from tests.test_codec import EXAMPLE, variant

MARTIN_EMAIL_SHA = "38a18406142df500e3834d517458872e74a1f8bf855699043648ae30cf733f21"
MARTIN_PHONE_SHA = hashlib.sha256(b"+33600000000").hexdigest()
NOW = 1_795_200_000_000

EXPECTED_EXAMPLE = {
    "event_id": "e-123",
    "event_time": 1_795_158_900_000,  # 2026-11-20T07:15:00Z
    "type": "price_view",
    "channel": "web",
    "campaign": "winter-suv",
    "publisher": "autonews.example",
    "ids": {"cookie": "c-9", "device": "d-1", "email": MARTIN_EMAIL_SHA, "user": "u-42",
            "loyalty": "L-77", "phone": MARTIN_PHONE_SHA},
    "context": EXAMPLE["context"],
    "properties": {"product_id": "suv-x", "price": 32900.0, "revenue": 0.0, "currency": "EUR",
                   "in_stock": True},
}


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
    ("1999-12-31T23:59:59Z", "field 'event_time' '1999-12-31T23:59:59Z' is outside years 2000-2100"),
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


# --- pii -----------------------------------------------------------------------------------------

def test_sha256_known_vector():
    assert pii.sha256_hex("abc") == \
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert pii.HASHED_TYPES == frozenset({"email", "phone"})


@pytest.mark.parametrize("raw,expected", [
    (" Martin@Example.COM ", "martin@example.com"),
    ("Martin.Dupont+promo@GMail.com", "martindupont@gmail.com"),
    ("m.a.r.t.i.n@googlemail.com", "martin@gmail.com"),
    ("martin.dupont+promo@example.com", "martin.dupont+promo@example.com"),  # not gmail: kept
    ("mailto:martin@example.com", "martin@example.com"),
    ("martin@example.com.", "martin@example.com"),
    ("n/a", ""),
    ("@example.com", ""),
    ("martin@", ""),
    ("+tag@gmail.com", ""),
])
def test_normalise_email(raw, expected):
    assert pii.normalise_email(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("06 00 00 00 00", "+33600000000"),
    ("+33 6 00 00 00 00", "+33600000000"),
    ("+33 (0)6 00 00 00 00", "+33600000000"),
    ("0033 6 00 00 00 00", "+33600000000"),
    ("33600000000", "+33600000000"),
    ("600000000", "+33600000000"),
    ("+1 (202) 555-0123", "+12025550123"),
    ("06-00-00-00-00", "+33600000000"),
    ("n/a", ""),
    ("+33", ""),
    ("+1234567890123456", ""),  # 16 digits: longer than E.164 allows
])
def test_normalise_phone(raw, expected):
    assert pii.normalise_phone(raw) == expected


def test_normalise_phone_default_region():
    assert pii.normalise_phone("020 7946 0000", default_region_prefix="+44") == "+442079460000"
    assert pii.normalise_phone("2025550123", default_region_prefix="+1") == "+12025550123"
    with pytest.raises(ValueError):
        pii.normalise_phone("0600000000", default_region_prefix="33")


def test_hash_identifier():
    assert pii.hash_identifier("email", "Martin@Example.com") == MARTIN_EMAIL_SHA
    assert pii.hash_identifier("Phone", "06 00 00 00 00") == MARTIN_PHONE_SHA
    assert pii.hash_identifier("email", MARTIN_EMAIL_SHA) == MARTIN_EMAIL_SHA  # pre-hashed
    assert pii.hash_identifier("phone", "not a phone") == ""
    assert pii.hash_identifier("loyalty", "  L-77 ") == "L-77"  # other types: stripped only


def test_redact_emails():
    assert pii.redact_emails("no address here") == "no address here"
    assert pii.redact_emails("contact Martin@Example.com now") == f"contact {MARTIN_EMAIL_SHA} now"
    assert pii.redact_emails("?email=martin%40example.com&x=1") == f"?email={MARTIN_EMAIL_SHA}&x=1"


# --- channels ------------------------------------------------------------------------------------

LANDING = "https://brand.example/suv"


@pytest.mark.parametrize("url,referrer,type_,expected", [
    # click ids first
    (LANDING + "?gclid=abc", None, "page_view", "search"),
    (LANDING + "?gbraid=abc", None, "page_view", "search"),
    (LANDING + "?wbraid=abc", None, "page_view", "search"),
    (LANDING + "?msclkid=abc", None, "page_view", "search"),
    (LANDING + "?dclid=abc", None, "page_view", "display"),
    (LANDING + "?fbclid=abc&utm_medium=email", None, "page_view", "social"),
    (LANDING + "?ttclid=1", None, "page_view", "social"),
    (LANDING + "?twclid=1", None, "page_view", "social"),
    (LANDING + "?li_fat_id=1", None, "page_view", "social"),
    (LANDING + "?ScCid=1", None, "page_view", "social"),
    # then utm_medium
    (LANDING + "?utm_medium=cpc", None, "page_view", "search"),
    (LANDING + "?utm_medium=PPC", None, "page_view", "search"),
    (LANDING + "?utm_medium=paid-search", None, "page_view", "search"),
    (LANDING + "?utm_medium=sem", None, "page_view", "search"),
    (LANDING + "?utm_medium=cpc&utm_source=facebook", None, "page_view", "social"),
    (LANDING + "?utm_medium=display", None, "page_view", "display"),
    (LANDING + "?utm_medium=banner", None, "page_view", "display"),
    (LANDING + "?utm_medium=cpm", None, "page_view", "display"),
    (LANDING + "?utm_medium=programmatic", None, "page_view", "display"),
    (LANDING + "?utm_medium=social", None, "page_view", "social"),
    (LANDING + "?utm_medium=Paid%20Social", None, "page_view", "social"),
    (LANDING + "?utm_medium=email", "https://www.google.com/", "page_view", "email"),
    (LANDING + "?utm_medium=newsletter", None, "page_view", "email"),
    (LANDING + "?utm_medium=affiliate", None, "page_view", "affiliate"),
    (LANDING + "?utm_medium=video", None, "page_view", "video"),
    (LANDING + "?utm_medium=sms", None, "page_view", "sms"),
    (LANDING + "?utm_medium=push", None, "page_view", "push"),
    (LANDING + "?utm_medium=qr-poster", None, "page_view", "direct"),  # unknown medium: next rules
    # then the event type
    (None, None, "store_visit", "store"),
    (None, None, "geofence_enter", "store"),
    (None, None, "push_open", "push"),
    (None, None, "sms_click", "sms"),
    (None, "https://mail.google.com/", "email_open", "email"),
    (None, None, "email_click", "email"),
    (None, None, "app_open", "app"),
    ("https://autonews.example/article", "https://autonews.example/", "impression", "display"),
    # then the referrer
    (LANDING, "https://www.google.fr/search?q=suv", "page_view", "search"),
    (LANDING, "https://www.bing.com/", "page_view", "search"),
    (LANDING, "https://duckduckgo.com/", "page_view", "search"),
    (LANDING, "https://search.yahoo.com/", "page_view", "search"),
    (LANDING, "https://www.qwant.com/", "page_view", "search"),
    (LANDING, "https://www.ecosia.org/", "page_view", "search"),
    (LANDING, "https://l.facebook.com/", "page_view", "social"),
    (LANDING, "https://www.instagram.com/", "page_view", "social"),
    (LANDING, "https://t.co/xyz", "page_view", "social"),
    (LANDING, "https://twitter.com/", "page_view", "social"),
    (LANDING, "https://x.com/brand", "page_view", "social"),
    (LANDING, "https://www.linkedin.com/feed", "page_view", "social"),
    (LANDING, "https://www.tiktok.com/", "page_view", "social"),
    (LANDING, "https://www.pinterest.fr/", "page_view", "social"),
    (LANDING, "https://old.reddit.com/r/cars", "page_view", "social"),
    (LANDING, "https://www.youtube.com/watch?v=1", "page_view", "video"),
    (LANDING, "https://mail.yahoo.com/", "page_view", "email"),
    (LANDING, "https://autonews.example/review", "page_view", "web"),
    (LANDING, "https://shop.brand.example/cart", "page_view", "direct"),  # same site
    (LANDING, "https://box.example/", "x.com", "web"),  # "x.com" as a type means nothing
    (LANDING, "https://google.example.net/", "page_view", "search"),
    (LANDING, "https://foo.google/", "page_view", "web"),  # a TLD is not a name
    # else direct
    (LANDING, None, "page_view", "direct"),
    (None, None, "purchase", "direct"),
    ("http://[::1", "not a url", None, "direct"),
    (12, ["garbage"], 3.5, "direct"),
])
def test_derive_channel(url, referrer, type_, expected):
    assert derive_channel(url, referrer, type_) == expected


def test_utm_params_and_campaign_params():
    url = ("https://brand.example/suv?UTM_Source=autonews&utm_medium=display&utm_campaign=winter-suv"
           "&utm_content=&utm_source=second&q=1")
    assert utm_params(url) == {"utm_source": "autonews", "utm_medium": "display",
                               "utm_campaign": "winter-suv"}
    assert campaign_params(url) == ("winter-suv", "autonews")
    assert campaign_params("https://brand.example/") == (None, None)


@pytest.mark.parametrize("url,expected", [
    ("https://brand.example/?utm_source=x", True),
    ("https://brand.example/?gclid=1", True),
    ("https://brand.example/?utm_term=suv", True),
    ("https://brand.example/?utm_source=", False),
    ("https://brand.example/?q=utm_source", False),
    ("https://brand.example/", False),
    ("http://[::1?utm_source=x", False),
    (None, False),
    (42, False),
])
def test_has_campaign_params(url, expected):
    assert has_campaign_params(url) is expected


@pytest.mark.parametrize("referrer,url,expected", [
    ("https://www.autonews.example/a", "https://brand.example/", "autonews.example"),
    ("autonews.example/a", None, "autonews.example"),
    ("https://AUTONEWS.example:8443/", None, "autonews.example"),
    ("https://brand.example/x", "https://www.brand.example/", None),
    ("https://localhost/", None, None),
    ("not a url", None, None),
    ("", None, None),
    (None, None, None),
])
def test_referrer_host(referrer, url, expected):
    assert referrer_host(referrer, url) == expected
