"""Declared traits: what a person tells the brand (zero-party data), carried by `identify` events.

    {"type": "identify", "ids": {...},
     "properties": {"traits": {"persona": "family_suv", "favourite_store": "paris-15",
                               "topics": ["electric", "towing"], "phone": "06 00 00 00 00"}}}

Kept as given, with these limits (anything else makes the event a dead letter, with the reason):
- a name is lowercase letters, digits and _ (at most 64, starting with a letter), and not the
  name of a computed trait (`streams.traits.model.TRAIT_NAMES`) nor `audiences`; at most
  `MAX_TRAITS` names per event;
- a value is a text (at most `MAX_TEXT` characters), a finite number, true/false, a list of at
  most `MAX_ITEMS` texts or numbers, or null (which clears the trait);
- personal data is hashed like identifiers are: a trait named `email` or `phone` (or ending in
  `_email` / `_phone`) is normalised and hashed (`pii.hash_identifier`); an address that does not
  normalise is refused. Email addresses in any other text were already replaced by their hash
  (ingest redacts every string of `properties`).
"""
from __future__ import annotations

import math
import re
from typing import Any

from streams.ingest.pii import hash_identifier
from streams.traits.model import TRAIT_NAMES

__all__ = ["MAX_ITEMS", "MAX_TEXT", "MAX_TRAITS", "declared_traits"]

MAX_TRAITS = 50
MAX_TEXT = 500
MAX_ITEMS = 50
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_RESERVED = frozenset({*TRAIT_NAMES, "audiences"})


def _personal(name: str) -> str | None:
    for kind in ("email", "phone"):
        if name == kind or name.endswith("_" + kind):
            return kind
    return None


def _scalar(value: Any) -> bool:
    if isinstance(value, bool) or isinstance(value, str):
        return not isinstance(value, str) or len(value) <= MAX_TEXT
    return isinstance(value, (int, float)) and math.isfinite(value)


def declared_traits(raw: Any) -> tuple[dict | None, str | None]:
    """(the traits to keep, None) or (None, why the event is refused)."""
    if not isinstance(raw, dict):
        return None, "field 'properties.traits' of an identify event is not a mapping of traits"
    if len(raw) > MAX_TRAITS:
        return None, f"properties.traits has {len(raw)} traits (at most {MAX_TRAITS})"
    kept: dict[str, Any] = {}
    for name, value in raw.items():
        where = f"properties.traits.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            return None, (f"{where}: a trait name is lowercase letters, digits and _ "
                          "(starting with a letter, at most 64)")
        if name in _RESERVED:
            return None, f"{where}: {name} is a computed trait, it cannot be declared"
        kind = _personal(name)
        if kind is not None and value is not None:
            hashed = hash_identifier(kind, value) if isinstance(value, str) else ""
            if not hashed:
                return None, f"{where}: not a valid {kind}, so it cannot be hashed"
            value = hashed
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS or not all(
                    _scalar(v) and not isinstance(v, bool) for v in value):
                return None, (f"{where}: a list holds at most {MAX_ITEMS} texts or numbers "
                              f"(texts of at most {MAX_TEXT} characters)")
        elif value is not None and not _scalar(value):
            return None, (f"{where}: a trait is a text (at most {MAX_TEXT} characters), a "
                          "number, true/false, a list or null")
        kept[name] = value
    return kept, None
