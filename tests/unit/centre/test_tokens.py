"""Signed links: a valid link opens exactly its identifier until it expires; every other string
is refused, with the reason kept for metrics only."""
from __future__ import annotations

import base64

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.centre.tokens import MAX_TOKEN, TokenRefused, csrf_token, sign, verify

SECRET = b"k" * 40
NOW = 1_800_000_000


def _reason(token, secret=SECRET, now=NOW) -> str:
    with pytest.raises(TokenRefused) as refused:
        verify(token, secret, now)
    return refused.value.reason


def test_a_link_opens_its_identifier_until_it_expires():
    token = sign("email:" + "a" * 64, NOW + 60, SECRET)
    grant = verify(token, SECRET, NOW)
    assert (grant.identifier, grant.expires, grant.kind) == ("email:" + "a" * 64, NOW + 60,
                                                             "email")
    assert verify(token, SECRET, NOW + 59.9).value == "a" * 64
    assert _reason(token, now=NOW + 60) == "expired"


def test_every_kind_of_bad_link_is_refused():
    token = sign("user:u-1", NOW + 60, SECRET)
    version, payload, signature = token.split(".")
    other = sign("user:u-2", NOW + 60, SECRET).split(".")[1]
    assert _reason(None) == _reason("") == "missing"
    for bad in ("x", "p1.abc", f"p2.{payload}.{signature}", f"p1.{payload}.{signature}.x",
                f"p1.{payload}!.{signature}", "p1.." + signature, "a" * (MAX_TOKEN + 1)):
        assert _reason(bad) == "malformed", bad
    assert _reason(token, secret=b"other" * 8) == "signature"
    # another person's identifier under a valid signature
    assert _reason(f"{version}.{other}.{signature}") == "signature"
    # a later expiry under the old signature
    longer = base64.urlsafe_b64encode(orjson.dumps({"i": "user:u-1", "x": NOW + 10**6}))
    assert _reason(f"p1.{longer.rstrip(b'=').decode()}.{signature}") == "signature"
    assert _reason(token[:-1] + ("A" if token[-1] != "A" else "B")) == "signature"


def test_a_signed_payload_of_the_wrong_shape_is_refused():
    import hashlib
    import hmac

    def forged(body: bytes) -> str:
        payload = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
        mac = hmac.new(SECRET, f"p1.{payload}".encode(), hashlib.sha256).digest()
        return f"p1.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    for body in (b"[]", b"{}", b'{"i": 1, "x": 2}', b'{"i": "no-colon", "x": 9999999999}',
                 b'{"i": "user:u", "x": "later"}', b"not json"):
        assert _reason(forged(body)) == "malformed", body


def test_identifiers_are_checked_when_signing():
    for bad in ("email", "Email:x", "user:", "user:" + "x" * 300, "user:a\nb"):
        with pytest.raises(ValueError):
            sign(bad, NOW, SECRET)


def test_the_csrf_token_depends_on_the_link_and_the_browser():
    a, b = sign("user:a", NOW + 60, SECRET), sign("user:b", NOW + 60, SECRET)
    assert csrf_token(SECRET, a, "n1") == csrf_token(SECRET, a, "n1")
    assert len({csrf_token(SECRET, a, "n1"), csrf_token(SECRET, b, "n1"),
                csrf_token(SECRET, a, "n2"), csrf_token(b"x" * 40, a, "n1")}) == 4


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=700),
                 st.from_regex(r"p1\.[A-Za-z0-9_-]{0,80}\.[A-Za-z0-9_-]{0,60}", fullmatch=True)))
def test_no_string_but_a_signed_one_opens_anything(text):
    with pytest.raises(TokenRefused):
        verify(text, SECRET, NOW)
