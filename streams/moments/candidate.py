"""A candidate trigger: what the moment engine hands to the preferences gate."""
from __future__ import annotations

from dataclasses import dataclass, field

from streams.experiments.model import Experiment
from streams.moments.rules.model import Message, Rule
from streams.moments.rules.syntax import PLACEHOLDER_RE


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
    experiment: Experiment | None = None  # the rule's arms (its `holdout` is one: a control arm)

    def __post_init__(self) -> None:
        if self.experiment is None and self.holdout_pct > 0:
            self.experiment = Experiment.holdout(self.rule, self.holdout_pct)

    def reason(self) -> str:
        return f"rule {self.rule} matched {', '.join(self.matched)}"

    def filled(self, template: dict) -> dict:
        """`template` (an arm's payload) with its placeholders filled as the action's were."""
        return _fill(template, {**self.bindings, "rule": self.rule,
                                "profile_id": self.profile_id, "code": self.code or ""})


def _fill(template: dict, values: dict) -> dict:
    return {k: PLACEHOLDER_RE.sub(lambda m: str(values.get(m.group(1), "")), str(v))
            for k, v in template.items()}


def candidate_for(rule: Rule, pid: str, tid: str, at: int, event_id: str, matched: list,
                  bindings: dict) -> Candidate:
    """The candidate of a moment, with the action's placeholders filled from `bindings`."""
    action = rule.action
    values = {**bindings, "rule": rule.id, "profile_id": pid, "code": action.code or ""}
    messages = tuple(Message(m.id, m.channels, _fill(m.payload, values)) if m.payload else m
                     for m in action.messages)
    return Candidate(rule=rule.id, profile_id=pid, trigger_id=tid, at=at, event_id=event_id,
                     matched=matched, channels=action.channels,
                     payload=_fill(action.payload, values),
                     code=action.code, story=action.story, messages=messages,
                     cooldown_ms=rule.cooldown_ms, holdout_pct=rule.holdout_pct,
                     tz_hint=bindings.get("tz"), bindings=bindings, experiment=rule.experiment)
