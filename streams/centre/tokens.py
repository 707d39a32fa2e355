"""Signed, expiring links: what lets a person open their preference page, and nothing else.

A token is `p1.<payload>.<signature>`, both parts base64url without padding:

- the payload is compact JSON `{"i": "TYPE:VALUE", "x": EXPIRY}`: the identifier as parcours
  stores it (email and phone as their SHA-256, `streams.ingest.pii`), and the expiry in epoch
  seconds;
- the signature is HMAC-SHA256 of `p1.<payload>` with the secret (`PARCOURS_PREFERENCES_SECRET`).

`verify` returns the `Grant` or raises `TokenRefused`, whose `reason` is a short word for metrics
and tests (`missing`, `malformed`, `signature`, `expired`). The server answers every refusal the
same way (403, one sentence), so nobody learns from it whether a person exists, or why a link
failed. The signature is checked before the payload is parsed, in constant time: a tampered
payload (another person's identifier under a valid signature) is a bad signature.

The CSRF token of the page's form is bound to the link and to a random per-browser nonce (a
`SameSite=Strict` cookie): `csrf_token(secret, token, nonce)`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass

import orjson

__all__ = ["MAX_TOKEN", "MIN_SECRET", "Grant", "TokenRefused", "csrf_token", "sign", "verify"]

VERSION = "p1"
MAX_TOKEN = 600  # characters: an identifier of at most 256 characters fits with room to spare
MIN_SECRET = 32  # characters of PARCOURS_PREFERENCES_SECRET
_PART = re.compile(r"^[A-Za-z0-9_-]+$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,63}:[^\x00-\x1f]{1,256}$")


class TokenRefused(Exception):
    """A token that opens nothing; `reason` is one word (never shown to the person)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Grant:
    """What a valid token grants: one identifier (TYPE:VALUE, as stored), until `expires` (s)."""

    identifier: str
    expires: int

    @property
    def kind(self) -> str:
        return self.identifier.split(":", 1)[0]

    @property
    def value(self) -> str:
        return self.identifier.split(":", 1)[1]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, message: str) -> bytes:
    return hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()


def sign(identifier: str, expires: int, secret: bytes) -> str:
    """The token granting `identifier` (TYPE:VALUE as stored) until `expires` (epoch s)."""
    if not _IDENTIFIER.match(identifier):
        raise ValueError(f"not an identifier as parcours stores it: {identifier[:80]!r}")
    payload = _b64(orjson.dumps({"i": identifier, "x": int(expires)}))
    signed = f"{VERSION}.{payload}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


def verify(token: str | None, secret: bytes, now: float) -> Grant:
    """The `Grant` of `token` at time `now` (epoch s), or `TokenRefused`."""
    if not token:
        raise TokenRefused("missing")
    if len(token) > MAX_TOKEN or token.count(".") != 2:
        raise TokenRefused("malformed")
    version, payload, signature = token.split(".")
    if version != VERSION or not _PART.match(payload) or not _PART.match(signature):
        raise TokenRefused("malformed")
    try:
        given = _unb64(signature)
    except (binascii.Error, ValueError):
        raise TokenRefused("malformed") from None
    if not hmac.compare_digest(given, _mac(secret, f"{version}.{payload}")):
        raise TokenRefused("signature")
    try:  # signed by us: anything odd below is our own bug or an old format, still refused
        body = orjson.loads(_unb64(payload))
        identifier, expires = body["i"], body["x"]
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        raise TokenRefused("malformed") from None
    if (not isinstance(identifier, str) or not _IDENTIFIER.match(identifier)
            or type(expires) is not int):
        raise TokenRefused("malformed")
    if expires <= now:
        raise TokenRefused("expired")
    return Grant(identifier, expires)


def csrf_token(secret: bytes, token: str, nonce: str) -> str:
    """The form's CSRF field for link `token` in the browser holding cookie `nonce`."""
    return _b64(_mac(secret, f"csrf.{token}.{nonce}"))
