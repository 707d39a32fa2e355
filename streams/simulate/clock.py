"""Time base of the simulation: zones, durations in epoch milliseconds, ISO 8601 formatting."""
from __future__ import annotations

import heapq
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")

SECOND = 1_000
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
# No session lasts longer than this, so a session started before `end - SESSION_BUDGET` stays
# inside the simulated window.
SESSION_BUDGET = 3 * HOUR


def epoch_ms(dt: datetime) -> int:
    """Aware datetime -> epoch milliseconds (exact, no float rounding)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000


def as_aware(start: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the project's time base), aware ones are kept."""
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a datetime, not {type(start).__name__}")
    return start.replace(tzinfo=UTC) if start.tzinfo is None or start.utcoffset() is None else start


def iso_at(ms: int, tz: Any, timespec: str = "milliseconds") -> str:
    """Epoch ms -> ISO 8601 with the offset of `tz` at that instant (exact to the millisecond)."""
    seconds, millis = divmod(ms, 1_000)
    return datetime.fromtimestamp(seconds, tz).replace(microsecond=millis * 1_000).isoformat(
        timespec=timespec)


class IsoClock:
    """Fast epoch-ms -> ISO 8601 with the zone's offset, for one zone.

    The zones of the simulation have whole-hour offsets, so local hours start on UTC hours: the
    text up to the hour, and the offset, are computed once per UTC hour and cached; minutes,
    seconds and milliseconds are plain arithmetic. Zones with other offsets take the slow path.
    """

    __slots__ = ("tz", "_hours")

    def __init__(self, tz: Any):
        self.tz = tz
        self._hours: dict[int, tuple[str, str] | None] = {}

    def __call__(self, ms: int) -> str:
        hour, within = divmod(ms, HOUR)
        cached = self._hours.get(hour, False)
        if cached is False:
            local = datetime.fromtimestamp(hour * 3_600, self.tz)
            offset = local.utcoffset() or timedelta(0)
            if offset % timedelta(hours=1) or local.minute or local.second:
                cached = None
            else:
                text = local.isoformat(timespec="seconds")
                cached = (text[:13], text[19:])   # "2026-11-20T08", "+01:00"
            self._hours[hour] = cached
        if cached is None:
            return iso_at(ms, self.tz)
        minute, rest = divmod(within, MINUTE)
        second, millis = divmod(rest, SECOND)
        return f"{cached[0]}:{minute:02d}:{second:02d}.{millis:03d}{cached[1]}"


def event_ms(event: dict) -> int:
    """Epoch ms of a raw touchpoint's event_time (epoch ms or ISO 8601 with an offset)."""
    value = event["event_time"]
    if isinstance(value, int):
        return value
    return epoch_ms(datetime.fromisoformat(value))


def in_time_order(*streams):
    """Merge streams of raw touchpoints, each in time order, into one in time order (lazily), as
    producers would send them: the Martin journey interleaved with a population."""
    return heapq.merge(*streams, key=event_ms)
