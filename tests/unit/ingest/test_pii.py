"""streams.ingest.pii: SHA-256, e-mail and phone normalisation, identifier hashing, e-mail
redaction."""
from __future__ import annotations

import pytest

from streams.ingest import pii
from tests.unit.ingest.cases import MARTIN_EMAIL_SHA, MARTIN_PHONE_SHA


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
