"""Shared constants and structural contract checks (no codec) for the streams.simulate tests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[3]
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
MARTIN_START = datetime(2026, 11, 20, 7, 15, tzinfo=UTC)      # 08:15 in Paris, on the metro


# -- structural contract checks (no codec) -----------------------------------------------------
# The checks on the wire format are structural (what DESIGN.md's contract says a touchpoint is),
# deliberately without the codec: the simulator must produce the contract, not what one codec
# version happens to accept.
def event_ms(value) -> int:
    """event_time -> epoch ms; raises AssertionError when it is not one of the two wire forms."""
    if isinstance(value, bool):
        raise AssertionError(f"event_time is a bool: {value!r}")
    if isinstance(value, int):
        return value
    assert isinstance(value, str), f"event_time has type {type(value).__name__}"
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None and dt.utcoffset() is not None, f"naive event_time {value!r}"
    return (dt - EPOCH) // timedelta(milliseconds=1)


def touchpoint_problem(raw: bytes) -> str | None:
    """Why `raw` is not a valid JSON touchpoint of the contract, or None when it is one."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not JSON"
    if not isinstance(obj, dict):
        return f"not an object ({type(obj).__name__})"
    for name in ("event_id", "type"):
        if name not in obj:
            return f"missing {name}"
        if not isinstance(obj[name], str) or not obj[name]:
            return f"{name} is not a non-empty string"
    if "event_time" not in obj:
        return "missing event_time"
    try:
        event_ms(obj["event_time"])
    except (AssertionError, ValueError) as exc:
        return f"bad event_time: {exc}"
    ids = obj.get("ids", {})
    if not isinstance(ids, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in ids.items()):
        return "ids is not a map of strings"
    for name in ("context", "properties"):
        if name in obj and obj[name] is not None and not isinstance(obj[name], dict):
            return f"{name} is not an object"
    for name in ("channel", "campaign", "publisher"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            return f"{name} is not a string"
    return None
