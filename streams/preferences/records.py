"""Preference-centre records: one per person and channel, the consent fields of DESIGN.md.

Preference topic (`preferences`) and preference files: the person's identifiers and when it was
decided: `{"ids": {"email": ...}, "channel": "push" | ... | "all", "opt_in": true, "quiet_hours":
"21:00-08:00", "max_per_day": 2, "preferred_channels": ["push"], "tz": "Europe/Paris",
"updated_at": "2026-11-01T10:00:00+01:00"}`. Each becomes a `consent` touchpoint, so it goes
through ingest (validation, PII hashing, dead letters) and identity like any other, with a
deterministic event id (a re-published record is the same event).

A record with `traits` and no `channel` (`{"ids": ..., "traits": {"topics": ["electric"]},
"updated_at": ...}`, what the preference centre writes for topics of interest) becomes an
`identify` touchpoint carrying them as declared traits (streams/ingest/declared.py checks them).
"""
from __future__ import annotations

import hashlib

import orjson

from schemas.codec import DecodeError

PREFERENCE_FIELDS = ("channel", "opt_in", "quiet_hours", "max_per_day", "preferred_channels", "tz")


def preference_touchpoint(record: dict) -> dict:
    """A preference record -> the raw `consent` (or `identify`, for traits) touchpoint it
    stands for (ValueError if unusable)."""
    if not isinstance(record, dict):
        raise ValueError(f"a preference record is a JSON object, not {type(record).__name__}")
    if not isinstance(record.get("ids"), dict) or not record["ids"]:
        raise ValueError("a preference record needs 'ids' (the person's identifiers)")
    if record.get("updated_at") is None:
        raise ValueError("a preference record needs 'updated_at' (ISO 8601 with offset, "
                         "or epoch ms)")
    digest = hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]
    if "channel" not in record and "traits" in record:
        return {"event_id": f"pref-{digest}", "event_time": record["updated_at"],
                "type": "identify", "channel": "web", "ids": record["ids"],
                "properties": {"traits": record["traits"], "source": "preference_centre"}}
    if not isinstance(record.get("channel"), str) or not isinstance(record.get("opt_in"), bool):
        raise ValueError("a preference record needs 'channel' (a channel or 'all') and 'opt_in' "
                         "(true/false), or 'traits'")
    props = {k: record[k] for k in PREFERENCE_FIELDS if k in record}
    props["source"] = "preference_centre"
    return {"event_id": f"pref-{digest}", "event_time": record["updated_at"], "type": "consent",
            "channel": "web", "ids": record["ids"], "properties": props}


def preference_raw(raw: bytes) -> bytes:
    """The raw bytes of a preference record -> the raw bytes of its consent touchpoint. An
    unusable record raises `DecodeError`, so ingest dead-letters it with the reason."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("decode", f"preference record is not JSON: {exc}") from None
    try:
        return orjson.dumps(preference_touchpoint(record))
    except (ValueError, TypeError) as exc:
        raise DecodeError("validation", f"preference record: {exc}") from None
