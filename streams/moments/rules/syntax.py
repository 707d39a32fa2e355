"""The syntax of single values in a rule pack: each check takes one plain YAML value and returns
it converted, or raises ValueError with a message that says what was expected.

Durations are "500ms", "30s", "5m", "1h", "1d", "2w" or whole milliseconds; distances "500m",
"2km" or metres; holdouts a share 0..1 or a percentage ("10%"). Also checked here: rule ids,
channel names, field paths (`properties.product_id`), operator values (`OP_CHECKS`) and the
{placeholders} of payload texts (`PLACEHOLDERS`). These helpers know nothing of YAML nodes or
lines: `loader` walks the pack and turns each ValueError into a `RuleError` at the right line.
"""
from __future__ import annotations

import difflib
import math
import re
from typing import Any, Callable

__all__ = [
    "ID_RE", "OP_CHECKS", "PLACEHOLDERS", "PLACEHOLDER_RE", "TRAIT_PLACEHOLDER", "UNITS_MS",
    "boolean", "channel", "field_path", "holdout", "number", "one_of", "parse_distance",
    "parse_duration", "payload_value", "positive", "rule_id", "scalar", "scalars", "suggest",
    "text", "version", "whole",
]

PLACEHOLDERS = ("product_id", "store_id", "code", "rule", "event_id", "profile_id")

UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_DISTANCE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|km)\s*$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_CHANNEL_RE = re.compile(r"^[a-z0-9_-]+$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
PLACEHOLDER_RE = re.compile(r"\{(\w+(?:\.\w+)?)\}")  # as the engine fills them; other braces: text
TRAIT_PLACEHOLDER = "trait."  # {trait.top_channel}: the profile's trait when the moment fires
# Roots of a field path, and whether they need a sub-key (properties.price, not properties).
_FIELD_ROOTS = {"type": False, "channel": False, "campaign": False, "publisher": False,
                "event_id": False, "event_time": False, "profile_id": False,
                "ids": True, "context": True, "properties": True}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "an empty value"
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    return repr(value) if isinstance(value, str) else str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_duration(value: Any) -> int:
    """A duration in milliseconds: "500ms", "30s", "5m", "1h", "1d", "2w" or a whole number >= 0."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _DURATION_RE.match(value) if isinstance(value, str) else None
    if match:
        return round(float(match[1]) * UNITS_MS[match[2]])
    raise ValueError(f"{_show(value)} is not a duration (use 500ms, 30s, 5m, 1h, 1d, 2w)")


def parse_distance(value: Any, *, unit_required: bool = False) -> float:
    """A distance in metres: "500m", "2km" or (unless `unit_required`) a number of metres >= 0."""
    if _is_number(value) and value >= 0 and not unit_required:
        return float(value)
    match = _DISTANCE_RE.match(value) if isinstance(value, str) else None
    if match:
        return float(match[1]) * (1000.0 if match[2] == "km" else 1.0)
    raise ValueError(f"{_show(value)} is not a distance (use 500m, 2km"
                     f"{'' if unit_required else ' or a number of metres'})")


def positive(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def checked(value: Any) -> Any:
        result = check(value)
        if result <= 0:
            raise ValueError(f"{_show(value)} must be more than 0")
        return result
    return checked


def text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_show(value)} is not a text")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{_show(value)} is not true or false")
    return value


def number(value: Any) -> float | int:
    if not _is_number(value):
        raise ValueError(f"{_show(value)} is not a number")
    return value


def whole(low: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{_show(value)} is not a whole number >= {low}")
        return value
    return check


def scalar(value: Any) -> Any:
    if value is None:
        raise ValueError("needs a value (to test for a missing field use {exists: false})")
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"{_show(value)} is not a value to compare "
                         "(use a text, a number or true/false)")
    return value


def scalars(value: Any) -> tuple:
    if not isinstance(value, list):
        raise ValueError(f"{_show(value)} is not a list")
    if not value:
        raise ValueError("an empty list matches nothing")
    return tuple(scalar(v) for v in value)


def holdout(value: Any) -> float:
    share = value
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            share = None
    if not _is_number(share) or not 0 <= share <= 1:
        raise ValueError(f"{_show(value)} is not a share between 0 and 1 (e.g. 0.1 or \"10%\")")
    return float(share)


def rule_id(value: Any) -> str:
    if not isinstance(value, str) or not ID_RE.match(value):
        raise ValueError(f"{_show(value)} is not a valid id (lowercase letters, digits, _ and -, "
                         "starting with a letter or a digit)")
    return value


def channel(value: Any) -> str:
    if not isinstance(value, str) or not _CHANNEL_RE.match(value):
        raise ValueError(f"{_show(value)} is not a channel name "
                         "(lowercase letters, digits, _ and -)")
    return value


def field_path(value: Any) -> str:
    parts = value.split(".") if isinstance(value, str) else []
    if not parts or not all(_NAME_RE.match(p) for p in parts):
        raise ValueError(f"{_show(value)} is not a field path (e.g. properties.product_id)")
    if parts[0] not in _FIELD_ROOTS:
        raise ValueError(f"{_show(value)} does not start with a field of the event"
                         f"{suggest(parts[0], _FIELD_ROOTS, listing=True)}")
    if _FIELD_ROOTS[parts[0]] != (len(parts) > 1):
        raise ValueError(f"{_show(value)}: "
                         + (f"name a field inside {parts[0]} (e.g. {parts[0]}.NAME)"
                            if _FIELD_ROOTS[parts[0]] else f"{parts[0]} has no fields"))
    return value


def suggest(word: str, choices, *, listing: bool = False) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected one of: {', '.join(choices)})" if listing else ""


def payload_value(value: Any, has_code: bool) -> str:
    """A payload value as a string; its {placeholders} must be bindings the engine fills in."""
    if value is None or isinstance(value, (list, dict)):
        raise ValueError(f"{_show(value)} is not a payload value (use a text or a number)")
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    for name in PLACEHOLDER_RE.findall(text):
        if name.startswith(TRAIT_PLACEHOLDER):
            from streams.moments.rules.traits_reader import trait_name

            trait_name(name[len(TRAIT_PLACEHOLDER):])
            continue
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=1)
            hint = (f"did you mean {{{close[0]}}}?" if close
                    else "use " + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
                    + " or {trait.NAME}")
            raise ValueError(f"unknown placeholder {{{name}}} in {text!r} ({hint})")
        if name == "code" and not has_code:
            raise ValueError(f"{text!r} uses {{code}} but the action has no code")
    return text


def version(value: Any) -> int:
    if isinstance(value, bool) or value != 1:
        raise ValueError(f"{_show(value)} is not a known version (write version: 1)")
    return value


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{_show(value)} is not one of {', '.join(choices)}")
        return value
    return check


OP_CHECKS: dict[str, Callable[[Any], Any]] = {
    "eq": scalar, "ne": scalar, "in": scalars, "not_in": scalars, "exists": boolean,
    "gt": number, "gte": number, "lt": number, "lte": number,
    "prefix": text, "contains": text,
}
