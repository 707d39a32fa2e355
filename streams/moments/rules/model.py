"""The compiled form of a rule pack: plain frozen dataclasses, built by `loader` from YAML.

A rule = a pattern over one profile's events (event, sequence, absence, count), optional profile
conditions checked when the pattern completes, a cooldown, a holdout share, and an action (allowed
channels or a story of messages, an offer code, a payload). Durations are milliseconds of event
time. Field paths are dotted: "type", "channel", "campaign", "properties.price",
"context.store_id".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.traits.model import Audience, TraitsConfig, TraitTest

if TYPE_CHECKING:
    from streams.experiments.model import Experiment

OPS = ("eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "prefix", "contains")
PATTERN_KINDS = ("event", "sequence", "absence", "count")
PROFILE_KEYS = ("identified", "min_interest", "interest_window", "audience", "trait")


@dataclass(frozen=True)
class Condition:
    """One test on one field of an event: `field op value` (for `exists`, value is a bool)."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class Geofence:
    """The event's context lat/lon lies within `within_m` metres of a store of the store list
    (any store, or one of `stores`). Binds `store_id` to the nearest such store."""

    within_m: float
    stores: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StockJoin:
    """Join with the inventory: the product at `product` (a field path of the event) has at least
    `min_quantity` units in a store. `store` says which store: "event" (the event's
    context.store_id, or the store bound by a geofence), or "nearest" (the stores within
    `within_km` of the person's last known position, nearest first). Binds `store_id`."""

    product: str = "properties.product_id"
    store: str = "nearest"
    within_km: float = 20.0
    min_quantity: int = 1


@dataclass(frozen=True)
class Predicate:
    """An event matches when every condition holds, it is inside the geofence (if any) and the
    stock join finds a store (if any)."""

    conditions: tuple[Condition, ...] = ()
    geofence: Geofence | None = None
    in_stock: StockJoin | None = None


@dataclass(frozen=True)
class EventPattern:
    """Fires on one matching event."""

    match: Predicate
    kind: str = "event"


@dataclass(frozen=True)
class SequencePattern:
    """Fires when events matching `steps` occur in this order (event time), the last no later than
    `within_ms` after the first; the fields in `same` must be equal across the steps."""

    steps: tuple[Predicate, ...]
    within_ms: int
    same: tuple[str, ...] = ()
    kind: str = "sequence"


@dataclass(frozen=True)
class AbsencePattern:
    """Fires `within_ms` after an event matching `after` when no event matching `missing` (with
    equal `same` fields) followed it in that time. Fires on event time, once the watermark has
    passed the deadline."""

    after: Predicate
    missing: Predicate
    within_ms: int
    same: tuple[str, ...] = ()
    kind: str = "absence"


@dataclass(frozen=True)
class CountPattern:
    """Fires when at least `at_least` matching events (equal `same` fields) fall within
    `within_ms`."""

    match: Predicate
    at_least: int
    within_ms: int
    same: tuple[str, ...] = ()
    kind: str = "count"


Pattern = EventPattern | SequencePattern | AbsencePattern | CountPattern


@dataclass(frozen=True)
class ProfileCondition:
    """Checked on the person when the pattern completes. `identified`: the profile holds a known
    identifier (email, phone, user or loyalty) or not. `min_interest`: at least that many
    product_view / price_view events of the moment's product within `interest_window_ms`.
    `audiences`: the profile is in each of them now; `trait`: one trait test
    (streams.traits.model.TraitTest) on the profile's traits now."""

    identified: bool | None = None
    min_interest: int = 0
    interest_window_ms: int = 7 * 86_400_000
    audiences: tuple[str, ...] = ()
    trait: TraitTest | None = None


@dataclass(frozen=True)
class Message:
    """One message of a story: its id, the channels (formats) it may go out on, its payload."""

    id: str
    channels: tuple[str, ...]
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    """What a trigger carries. Either `channels` (one message) or a `story`: the messages in order,
    each person gets the next one not yet seen. Payload values are strings and may name bindings
    in braces: {product_id}, {store_id}, {code}, {rule}, {event_id}."""

    channels: tuple[str, ...] = ()
    payload: dict = field(default_factory=dict)
    code: str | None = None
    story: str | None = None
    messages: tuple[Message, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    pattern: Pattern
    action: Action
    description: str = ""
    profile: ProfileCondition | None = None
    cooldown_ms: int = 0
    holdout_pct: float = 0.0  # share of profiles (0..1) held out of this rule, by hash
    line: int = 0  # where the rule starts in its file, for messages
    experiment: Experiment | None = None  # arms of its message (streams.experiments)


@dataclass(frozen=True)
class RulePack:
    rules: tuple[Rule, ...]
    lateness_ms: int = 5 * 60_000  # out-of-order tolerance on event time
    history_ms: int = 0  # how long events are kept per profile (0: derived from the rules)
    preferences: dict = field(default_factory=dict)  # GateConfig.from_dict input
    traits: TraitsConfig = field(default_factory=TraitsConfig)
    audiences: tuple[Audience, ...] = ()
    stores_file: str | None = None  # absolute paths, resolved by the loader
    inventory_file: str | None = None
    source: str = ""


def history_ms(rules: tuple[Rule, ...], lateness_ms: int) -> int:
    """How long events must be kept per profile: the longest pattern window or interest window of
    any rule, plus the lateness allowed."""
    longest = 0
    for rule in rules:
        longest = max(longest, getattr(rule.pattern, "within_ms", 0))
        if rule.profile is not None and rule.profile.min_interest > 0:
            longest = max(longest, rule.profile.interest_window_ms)
    return longest + lateness_ms
