"""The preferences gate's configuration: the `preferences:` section of a rule pack, checked.

`GateConfig.from_dict` raises ValueError whose message starts with the offending key, so the rule
pack loader can point at its line. Also the small time helpers the gate shares (zones, quiet-hour
windows, durations).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from streams.moments.rules import syntax

DAY_MS = 86_400_000
_QUIET = re.compile(r"^\s*(\d\d?):(\d\d)\s*-\s*(\d\d?):(\d\d)\s*$")


def parse_duration(text: Any) -> int:
    """ "500ms", "30s", "5m", "1h", "1d", "2w" (decimals allowed) or integer milliseconds -> ms: the
    rule language's durations (`syntax.parse_duration`), with the gate's error message."""
    try:
        return syntax.parse_duration(text)
    except ValueError:
        raise ValueError(f"bad duration {text!r}: expected a number with a unit ms, s, m, h, d, w "
                         "(e.g. '30s', '5m', '7d') or integer milliseconds") from None


def fmt_ms(ms: int) -> str:
    unit = next((u for u in ("d", "h", "m", "s") if ms and ms % syntax.UNITS_MS[u] == 0), "ms")
    return f"{ms // syntax.UNITS_MS[unit]}{unit}"


def zone_info(name: Any) -> ZoneInfo | None:
    """The (cached) ZoneInfo of `name`, or None when it is not a known time zone."""
    return _zone_of(name) if isinstance(name, str) and name else None


@lru_cache(maxsize=1024)
def _zone_of(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:  # ZoneInfoNotFoundError, ValueError for odd paths, OSError
        return None


def quiet_window(text: Any) -> tuple[int, int] | None:
    """ "HH:MM-HH:MM" -> (start, end) in minutes of the day; None when malformed."""
    m = _QUIET.match(text) if isinstance(text, str) else None
    h1, m1, h2, m2 = (int(g) for g in m.groups()) if m else (99, 0, 0, 0)
    return None if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59 else (h1 * 60 + m1, h2 * 60 + m2)


def hhmm(window: tuple[int, int]) -> str:
    return "-".join(f"{x // 60:02d}:{x % 60:02d}" for x in window)


# -- configuration -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Weights:
    preference: float = 1.0
    engagement: float = 0.5
    cost: float = 10.0


@dataclass(frozen=True)
class GateConfig:
    """The `preferences:` section of a rule pack; durations in ms, quiet hours (start, end)."""

    default_tz: str = "UTC"
    quiet_hours: tuple[str, str] | None = ("21:00", "08:00")
    max_per_day: int = 3
    max_per_day_channel: dict[str, int] = field(default_factory=dict)
    rolling: tuple[tuple[int, int], ...] = ()  # (window_ms, max)
    default_opt_in: dict[str, bool] = field(default_factory=dict)
    holdout: float = 0.0
    channel_cost: dict[str, float] = field(default_factory=dict)
    weights: Weights = Weights()
    engagement_window: int = 30 * DAY_MS

    @classmethod
    def from_dict(cls, d: dict | None) -> GateConfig:
        """Parse the YAML mapping; every problem raises ValueError starting with the key name."""
        _need(d is None or isinstance(d, dict), f"preferences: expected a mapping, got {d!r}")
        for key in d or ():
            _need(key in _PARSERS, f"{key}: unknown key (known: {', '.join(_PARSERS)})")
        return cls(**{key: _prefixed(key, _PARSERS[key], v) for key, v in (d or {}).items()})


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _prefixed(prefix: str, conv, value: Any) -> Any:
    """conv(value), with `prefix: ` in front of the message of any ValueError it raises."""
    try:
        return conv(value)
    except ValueError as exc:
        raise ValueError(f"{prefix}: {exc}") from None


def _checked(ok, expected: str, conv=None):
    """A parser accepting the values v for which ok(v), converted by conv."""
    def parse(v: Any) -> Any:
        _need(ok(v), f"expected {expected}, got {v!r}")
        return conv(v) if conv else v
    return parse


_count = _checked(lambda v: type(v) is int and v >= 0, "an integer >= 0")
_number = _checked(lambda v: type(v) in (int, float) and math.isfinite(v), "a number", float)


def _duration(v: Any) -> int:
    ms = parse_duration(v)
    _need(ms > 0, f"duration must be > 0, got {v!r}")
    return ms


def _mapping(conv, known=None):
    """A parser of {name: value} applying `conv` to each value (names limited to `known`)."""
    def parse(v: Any) -> dict:
        _need(isinstance(v, dict), f"expected a mapping, got {v!r}")
        for k in v if known else ():
            _need(k in known, f"{k}: unknown key (known: {', '.join(known)})")
        return {str(k): _prefixed(str(k), conv, x) for k, x in v.items()}
    return parse


def _parse(key: str, v: Any) -> Any:
    """The keys whose parsing is not a plain check or mapping."""
    if key == "default_tz":
        _need(zone_info(v) is not None, f"unknown time zone {v!r}")
        return v
    if key == "quiet_hours":
        _need(v is None or quiet_window(v) is not None, f"{v!r} is not HH:MM-HH:MM")
        return None if v is None else tuple(hhmm(quiet_window(v)).split("-"))
    if key == "rolling":
        shape = "{window: duration, max: int}"
        _need(isinstance(v, list), f"expected a list of {shape}, got {v!r}")
        for i, x in enumerate(v):
            _need(isinstance(x, dict) and set(x) == {"window", "max"}, f"[{i}]: expected {shape}")
        return tuple((_prefixed(f"[{i}]", _duration, x["window"]),
                      _prefixed(f"[{i}]", _count, x["max"])) for i, x in enumerate(v))
    text = v.strip() if isinstance(v, str) else ""  # holdout
    try:
        x = (float(text[:-1]) / 100 if text.endswith("%") else float(text)) if text else _number(v)
    except ValueError:
        raise ValueError(f"expected a share 0..1 or a percentage like '5%', got {v!r}") from None
    _need(0.0 <= x <= 1.0, f"must be within 0..1 (or 0%..100%), got {v!r}")
    return x


_PARSERS = {  # in the order of the GateConfig fields
    "default_tz": lambda v: _parse("default_tz", v),
    "quiet_hours": lambda v: _parse("quiet_hours", v),
    "max_per_day": _count, "max_per_day_channel": _mapping(_count),
    "rolling": lambda v: _parse("rolling", v),
    "default_opt_in": _mapping(_checked(lambda v: type(v) is bool, "true or false")),
    "holdout": lambda v: _parse("holdout", v), "channel_cost": _mapping(_number),
    "weights": lambda v: Weights(**_mapping(_number, Weights.__dataclass_fields__)(v)),
    "engagement_window": _duration,
}
