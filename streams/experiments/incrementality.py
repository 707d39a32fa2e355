"""What a rule caused, from its control arm: the incremental conversions and revenue.

For a rule whose experiment has a control arm (its `holdout` is one), the treated arms together
against the control, intention-to-treat:

    incremental conversions = treated conversions - control rate x treated profiles
    incremental revenue     = treated revenue - control revenue per profile x treated profiles

i.e. treated minus control, scaled to the treated population: what the rule's messages added
over what those profiles would have done anyway. Attribution credits channels with touches; this
credits them with causes. `by_channel` splits each rule's figures over the channels its triggers
went out on, in proportion to its triggers per channel, so that they sit beside the credit the
attribution models give each channel (`parcours attribution --compare`).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RuleLift", "by_channel", "rule_lift"]


@dataclass(frozen=True)
class RuleLift:
    rule: str
    treated: int  # profiles entered in the treated arms
    treated_conversions: int
    control: int
    control_conversions: int
    incremental_conversions: float
    incremental_revenue: float


def rule_lift(rule: str, treated: tuple[int, int, float],
              control: tuple[int, int, float]) -> RuleLift | None:
    """(profiles, conversions, revenue) of the treated arms and of the control; None without
    both."""
    n_t, c_t, r_t = treated
    n_c, c_c, r_c = control
    if n_t <= 0 or n_c <= 0:
        return None
    return RuleLift(rule, n_t, c_t, n_c, c_c, c_t - n_t * c_c / n_c, r_t - n_t * r_c / n_c)


def by_channel(lifts: list[RuleLift],
               triggers: dict[str, dict[str, int]]) -> dict[str, tuple[float, float]]:
    """channel -> (incremental conversions, incremental revenue), each rule's split over the
    channels of its triggers (`triggers`: rule -> channel -> triggers sent)."""
    out: dict[str, tuple[float, float]] = {}
    for lift in lifts:
        sent = triggers.get(lift.rule) or {}
        total = sum(sent.values())
        for channel, n in sent.items():
            conv, rev = out.get(channel, (0.0, 0.0))
            share = n / total
            out[channel] = (conv + share * lift.incremental_conversions,
                            rev + share * lift.incremental_revenue)
    return out
