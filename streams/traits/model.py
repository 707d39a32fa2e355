"""The compiled form of a pack's `traits:` settings and `audiences:`: plain frozen dataclasses.

`TraitsConfig` says how the computed traits are computed (the lapse after the last purchase, the
window of `top_channel`, the RFM thresholds). An `Audience` is a named predicate over a profile's
traits and recent behaviour, built from `TraitTest` (one trait against the rule language's
operators, or `within` a duration for a time), `CountTest` (matching events within a window,
against a number) and `All` / `AnyOf` / `Not`. Durations are milliseconds of event time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["DAY_MS", "LIFECYCLES", "TIME_TRAITS", "TRAIT_NAMES", "All", "AnyOf", "Audience",
           "CountTest", "Not", "Rfm", "TraitTest", "TraitsConfig"]

DAY_MS = 86_400_000

# the computed traits, by name, and which of them are times (epoch ms inside, ISO 8601 outside)
TRAIT_NAMES = ("first_seen", "last_seen", "purchases", "revenue", "last_purchase_at",
               "lifecycle", "top_channel", "rfm")
TIME_TRAITS = frozenset({"first_seen", "last_seen", "last_purchase_at"})
LIFECYCLES = ("anonymous", "known", "customer", "repeat", "lapsed")


@dataclass(frozen=True)
class Rfm:
    """Four ascending cut points per axis give the scores 1 to 5.

    Recency (durations since the last purchase): under the first cut scores 5, ..., at or past
    the last scores 1. Frequency (purchases) and monetary (revenue): under the first cut scores 1,
    ..., at or above the last scores 5."""

    recency_ms: tuple[int, int, int, int] = (30 * DAY_MS, 90 * DAY_MS, 180 * DAY_MS,
                                             365 * DAY_MS)
    frequency: tuple[float, float, float, float] = (2, 3, 5, 10)
    monetary: tuple[float, float, float, float] = (100, 500, 1000, 5000)
    source: str = "parcours defaults"  # where the cut points come from (the pack, ClickHouse)


@dataclass(frozen=True)
class TraitsConfig:
    lapse_after_ms: int = 180 * DAY_MS  # a customer whose last purchase is this old is lapsed
    top_channel_window_ms: int = 90 * DAY_MS
    purchase_types: frozenset = frozenset({"purchase"})
    rfm: Rfm = field(default_factory=Rfm)


@dataclass(frozen=True)
class TraitTest:
    """`trait` (a computed name, `rfm.r` / `rfm.f` / `rfm.m`, or a declared trait) passes every
    (operator, value) of `ops`; for a time trait, `within_ms` (its age is under it) instead."""

    trait: str
    ops: tuple[tuple[str, Any], ...] = ()
    within_ms: int | None = None


@dataclass(frozen=True)
class CountTest:
    """The number of the profile's events matching `match` (a rule `Predicate`) in the last
    `within_ms` passes every (operator, number) of `ops`."""

    match: Any  # streams.moments.rules.model.Predicate
    within_ms: int
    ops: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class All:
    parts: tuple


@dataclass(frozen=True)
class AnyOf:
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass(frozen=True)
class Audience:
    id: str
    when: Any  # TraitTest | CountTest | All | AnyOf | Not
    description: str = ""
    line: int = 0
