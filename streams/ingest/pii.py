"""Personal identifiers: normalise email and phone, then hash them (SHA-256, lower-case hex).

Ingest runs every identifier through `hash_identifier`, so raw email addresses and phone numbers
never leave ingest (DESIGN.md). Hashing the *normalised* form is what lets the same person be
recognised across channels: " Martin.Dupont+promo@GMail.com" from a CRM export and
"martindupont@gmail.com" from a web form hash to the same value.

Rules:
- Email: trimmed and lower-cased (local parts are case-insensitive in practice everywhere that
  matters). For gmail.com and googlemail.com, which ignore dots and "+tag" in the local part, those
  are dropped and the domain is written gmail.com. Other providers are left alone: a "+" or a dot
  may be significant there. A value without "@" is not an address.
- Phone: E.164, "+" then 7 to 15 digits; separators and "(0)" are dropped. "00" means an
  international prefix; a single leading "0" is the national trunk prefix and is replaced by
  `default_region_prefix`; bare digits that already start with that country code get a "+", other
  bare digits get the prefix.
- A value that cannot be normalised (no "@", too few or too many digits) gives "" from
  `hash_identifier`, and ingest drops it: hashing junk such as "n/a" would give thousands of people
  one shared identifier and stitch them into one profile.
- Pre-hashed: an email or phone value that is already 64 hex digits is taken as a SHA-256 a
  producer computed itself and kept (lower-cased), not hashed again. Producers must hash the
  normalised form described above for it to match.
"""
from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

__all__ = [
    "HASHED_TYPES",
    "hash_identifier",
    "is_sha256_hex",
    "normalise_email",
    "normalise_phone",
    "redact_emails",
    "sha256_hex",
]

HASHED_TYPES = frozenset({"email", "phone"})
"""Identifier types that are personal data: normalised and hashed at ingest."""

E164_MIN_DIGITS = 7
E164_MAX_DIGITS = 15

_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_NOT_DIGIT = re.compile(r"[^0-9]")
_PREFIX = re.compile(r"\+[1-9][0-9]{0,2}")
_EMAIL_IN_TEXT = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)"
                            r"[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def sha256_hex(s: str) -> str:
    """SHA-256 of the UTF-8 bytes of `s`, as 64 lower-case hex digits."""
    return hashlib.sha256(s.encode("utf-8")).hexdigest()


def is_sha256_hex(s: str) -> bool:
    """True when `s` is exactly 64 hex digits (either case)."""
    return len(s) == 64 and _SHA256_HEX.fullmatch(s) is not None


def normalise_email(s: str) -> str:
    """Canonical form of an email address, or "" when `s` is not one (see module docstring)."""
    e = s.strip().lower()
    if e.startswith("mailto:"):
        e = e[7:].strip()
    local, at, domain = e.rpartition("@")
    domain = domain.rstrip(".")
    if not at or not local or not domain:
        return ""
    if domain in _GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
        if not local:
            return ""
    return f"{local}@{domain}"


def normalise_phone(s: str, default_region_prefix: str = "+33") -> str:
    """E.164 form of a phone number ("+" and digits), or "" when `s` is not one.

    >>> normalise_phone("06 00 00 00 00")
    '+33600000000'
    >>> normalise_phone("0033 6 00 00 00 00")
    '+33600000000'
    """
    if not _PREFIX.fullmatch(default_region_prefix):
        raise ValueError(f"default_region_prefix must be '+' and a 1-3 digit country code, "
                         f"got {default_region_prefix!r}")
    text = s.strip()
    international = text.startswith("+")
    if "(0)" in text:  # "+33 (0)6 ...": the trunk 0 written after the country code
        text = text.replace("(0)", "")
    digits = _NOT_DIGIT.sub("", text)
    if international:
        number = digits
    elif digits.startswith("00"):
        number = digits[2:]
    elif digits.startswith("0"):
        number = default_region_prefix[1:] + digits[1:]
    elif digits.startswith(default_region_prefix[1:]):
        number = digits
    else:
        number = default_region_prefix[1:] + digits
    if not E164_MIN_DIGITS <= len(number) <= E164_MAX_DIGITS or number.startswith("0"):
        return ""
    return "+" + number


def hash_identifier(type_: str, value: str) -> str:
    """The value ingest keeps for identifier `type_`.

    Email and phone (`HASHED_TYPES`, type matched case-insensitively) are normalised then hashed,
    or kept when already a SHA-256 hex digest; "" when nothing usable is left. Other types are
    returned stripped and otherwise unchanged.
    """
    v = value.strip()
    kind = type_.strip().lower()
    if kind not in HASHED_TYPES:
        return v
    if is_sha256_hex(v):
        return v.lower()
    canonical = normalise_email(v) if kind == "email" else normalise_phone(v)
    return sha256_hex(canonical) if canonical else ""


def _hash_match(m: re.Match) -> str:
    return sha256_hex(normalise_email(unquote(m.group(0))))


def redact_emails(text: str) -> str:
    """`text` with every email address (also "%40"-encoded, as in URLs) replaced by its hash.

    Catches the usual leak of a raw address through a landing-page URL (`?email=...`). Phone
    numbers in free text cannot be told apart from other digits reliably and are not touched.
    """
    if "@" not in text and "%40" not in text:
        return text
    return _EMAIL_IN_TEXT.sub(_hash_match, text)
