"""Ingest's guard against event times ahead of the clock.

Each input partition's watermark mark is its newest event time, so one record dated 2099 (a producer
whose clock is wrong, seconds read as a date, a test record) would carry every mark to 2099 and make
every honest event after it late. `streams.ingest.normalise.ingest_batch` refuses an event whose
time is more than `max_future_ms` ahead of its wall clock (read once per batch): error kind "clock",
with a reason that says by how much, e.g. "event_time 2099-03-01T00:00:00Z is 26,720 days ahead of
the clock (PARCOURS_MAX_FUTURE_SECONDS=300)".

The default, 5 minutes, is the default rule pack's lateness: a tolerated event moves its
partition's mark at most that far past the clock, so the watermark (the slowest mark minus the
lateness) never passes the clock and no event is late for being from the present. An event in
transit can then be late after `lateness - max_future` instead of `lateness`; a tighter tolerance
leaves more of the lateness to slow events, a looser one than the lateness lets tolerated future
events make present ones late.
"""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

__all__ = ["DEFAULT_MAX_FUTURE_MS", "SETTING", "ahead_reason", "readable_duration"]

DEFAULT_MAX_FUTURE_MS = 300_000
SETTING = "PARCOURS_MAX_FUTURE_SECONDS"
"""The environment variable of the tolerance (streams.config), named in the refusal."""

_UNITS = (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000), ("second", 1_000))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def ahead_reason(event_time_ms: int, now_ms: int, max_future_ms: int) -> str:
    """The refusal of an event more than `max_future_ms` ahead of `now_ms` (the caller compares:
    this module imports nothing, so streams.config can read its default cheaply)."""
    return (f"event_time {_iso(event_time_ms)} is {readable_duration(event_time_ms - now_ms)} "
            f"ahead of the clock ({SETTING}={_seconds(max_future_ms)})")


def readable_duration(ms: int) -> str:
    """A positive duration in its largest whole unit, with the next unit below 10 of it, rounded
    up at the last unit shown (so a refusal never reads as the tolerance itself): "40 seconds",
    "5 minutes 1 second", "3 hours 12 minutes", "26,720 days"."""
    ms = max(ms, 1)
    index = next((i for i, (_, size) in enumerate(_UNITS) if ms >= size), len(_UNITS) - 1)
    size = _UNITS[index][1]
    step = size if ms // size >= 10 or index == len(_UNITS) - 1 else _UNITS[index + 1][1]
    rest = math.ceil(ms / step) * step
    parts = []
    for name, size in _UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(_count(count, name))
    return " ".join(parts)


def _count(n: int, unit: str) -> str:
    return f"{n:,} {unit}{'' if n == 1 else 's'}"


def _iso(ms: int) -> str:
    dt = _EPOCH + timedelta(milliseconds=ms)
    return dt.isoformat(timespec="milliseconds" if ms % 1000 else "seconds").replace("+00:00", "Z")


def _seconds(ms: int) -> str:
    return f"{ms // 1000}" if ms % 1000 == 0 else f"{ms / 1000:g}"
