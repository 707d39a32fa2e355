"""What the preferences gate decides about a candidate: a trigger, or a suppression and why.

`Trigger` goes to `triggers.<channel>` and the `triggers` table, `Suppression` to `suppressions`
(schemas/trigger.avsc and schemas/suppression.avsc are their contracts); `Decision` holds one of
them, the end of a deferral, and the experiment row of an entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from streams.experiments.exposures import ExposureRow

__all__ = ["Decision", "Suppression", "Trigger"]


class Trigger(TypedDict):
    """A candidate the gate lets through, on its chosen channel (`triggers.<channel>`)."""

    trigger_id: str  # deterministic: the same moment reprocessed gives the same id
    profile_id: str
    moment: str  # the rule's id (as `rule`)
    rule: str
    channel: str
    event_id: str  # the completing event
    fired_at: int  # epoch ms: the moment's event time
    code: str | None
    story: str  # "" when the rule has no story
    message: str  # the story's message sent; "" when the rule has no story
    matched: list[str]  # the event ids that made the moment
    reason: str
    payload: dict[str, str]  # placeholders filled; with the code, when the rule has one
    experiment: str  # the rule's experiment ("" when none): the profile entered it, in `arm`
    arm: str


class Suppression(TypedDict):
    """A candidate the gate stopped, and why (`suppressions`): the checks a-h above."""

    suppression_id: str  # a hash of (trigger_id, reason)
    trigger_id: str
    profile_id: str
    moment: str
    rule: str
    channel: str  # the channel it would have used; "" when none was left
    event_id: str
    reason: str  # the check that stopped it: "duplicate", "opt_out", "quiet_hours_deferred", ...
    detail: str  # readable
    at: int  # epoch ms: the moment's event time
    experiment: str  # a control arm's entry: its experiment and arm ("" otherwise)
    arm: str


@dataclass
class Decision:
    """Exactly one of trigger / suppression is set; defer_until only with quiet_hours_deferred;
    exposure when the candidate entered the profile in its rule's experiment."""

    trigger: Trigger | None = None
    suppression: Suppression | None = None
    defer_until: int | None = None
    exposure: ExposureRow | None = None
