"""Quiet hours in the person's time zone: when the window holding a time ends, in UTC.

Wall times are local (`zoneinfo`): a window may wrap midnight, and a DST jump may remove or repeat
the wall time it ends at (`local_ms` takes the first instant at or after it).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["local_ms", "quiet_end"]


def local_ms(day: date, minutes: int, zone: ZoneInfo) -> int:
    """UTC epoch ms of the local wall time `minutes` on `day`; the first instant after the gap when
    that wall time does not exist (DST jump); the first occurrence when it exists twice."""
    wall = datetime.combine(day, time(minutes // 60, minutes % 60))
    s = int(wall.replace(tzinfo=zone).timestamp())
    if datetime.fromtimestamp(s, zone).replace(tzinfo=None) == wall:
        return s * 1000
    lo, hi = int(wall.replace(tzinfo=zone, fold=1).timestamp()), s  # the jump lies in between
    while lo < hi:  # the first second whose wall time is at or after `wall`
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= wall else (
            mid + 1, hi)
    return lo * 1000


def quiet_end(at: int, zone: ZoneInfo, start: int, end: int) -> int | None:
    """UTC ms at which the quiet window containing `at` ends, or None when `at` is outside
    (the window wraps midnight when start > end; start == end means no quiet hours)."""
    local = datetime.fromtimestamp(at / 1000, zone)
    minute, day = local.hour * 60 + local.minute, local.date()
    if start < end and start <= minute < end or start > end and minute < end:
        return local_ms(day, end, zone)
    if start > end and minute >= start:
        return local_ms(day + timedelta(days=1), end, zone)
    return None
