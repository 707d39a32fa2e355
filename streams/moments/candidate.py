"""A candidate trigger: what the moment engine hands to the preferences gate."""
from __future__ import annotations

from dataclasses import dataclass, field

from streams.moments.rules import Message


@dataclass
class Candidate:
    """A moment that fired for one profile, before the person's preferences are applied.

    `trigger_id` is deterministic (rule, profile, moment window): the same moment reprocessed gives
    the same id. `at` is the moment's event time (epoch ms UTC): the completing event's time, or the
    deadline of an absence. `matched` lists the event ids that made the moment.
    """

    rule: str
    profile_id: str
    trigger_id: str
    at: int
    event_id: str
    matched: list[str]
    channels: tuple[str, ...] = ()  # allowed channels when the rule has no story
    payload: dict = field(default_factory=dict)  # str -> str, bindings already substituted
    code: str | None = None
    story: str | None = None
    messages: tuple[Message, ...] = ()  # the story's messages, in order
    cooldown_ms: int = 0
    holdout_pct: float = 0.0  # this rule's holdout share (0..1)
    tz_hint: str | None = None  # the completing event's context.tz, if any
    bindings: dict = field(default_factory=dict)  # placeholder values: product_id, store_id, ...

    def reason(self) -> str:
        return f"rule {self.rule} matched {', '.join(self.matched)}"
