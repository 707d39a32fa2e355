"""An experiment on a rule's message: its arms, its control, its goal.

Weights are percentages summing to 100 (kept as shares 0..1). At most one arm is the control: its
entries are withheld (a `holdout` suppression) and recorded like the others'. A rule's plain
`holdout: 10%` is the experiment `Experiment.holdout(rule, 0.10)`: a control arm of 10% and the
rule's own action for the rest, assigned with the hash the holdout always used, so the profiles
held out before stay held out.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from streams.errors import ConfigError

__all__ = ["Arm", "Experiment", "ExperimentError", "DEFAULT_GOAL", "DEFAULT_WITHIN_MS"]

DEFAULT_GOAL = ("purchase",)
DEFAULT_WITHIN_MS = 7 * 86_400_000
_TOLERANCE = 1e-9


class ExperimentError(ConfigError):
    """An experiment that cannot run as written (weights, control arms, ids)."""


@dataclass(frozen=True)
class Arm:
    id: str
    share: float  # of the experiment's entries, 0..1
    control: bool = False
    action: dict = field(default_factory=dict)  # overrides of the rule's action (payload, channels)


@dataclass(frozen=True)
class Experiment:
    id: str
    arms: tuple[Arm, ...]
    goal_types: tuple[str, ...] = DEFAULT_GOAL
    within_ms: int = DEFAULT_WITHIN_MS
    salt: str = ""  # the hash's salt; default "experiment:<id>"

    def __post_init__(self) -> None:
        if not self.id:
            raise ExperimentError("an experiment needs an id")
        if not self.arms:
            raise ExperimentError(f"experiment {self.id}: no arms")
        ids = [arm.id for arm in self.arms]
        if len(set(ids)) != len(ids):
            raise ExperimentError(f"experiment {self.id}: arm ids repeat: {', '.join(ids)}")
        controls = [arm.id for arm in self.arms if arm.control]
        if len(controls) > 1:
            raise ExperimentError(f"experiment {self.id}: {len(controls)} control arms "
                                  f"({', '.join(controls)}); at most one")
        for arm in self.arms:
            if not 0 < arm.share <= 1:
                raise ExperimentError(f"experiment {self.id}: arm {arm.id} has weight "
                                      f"{arm.share * 100:g}; expected more than 0 and at most 100")
        total = sum(arm.share for arm in self.arms)
        if abs(total - 1) > _TOLERANCE:
            raise ExperimentError(f"experiment {self.id}: weights sum to {total * 100:g}, "
                                  "not 100")
        if self.within_ms <= 0:
            raise ExperimentError(f"experiment {self.id}: the goal's window must be positive")
        if not self.salt:
            object.__setattr__(self, "salt", f"experiment:{self.id}")

    @property
    def control(self) -> Arm | None:
        return next((arm for arm in self.arms if arm.control), None)

    def weights(self) -> dict[str, float]:
        return {arm.id: arm.share for arm in self.arms}

    @classmethod
    def holdout(cls, rule: str, share: float, **goal) -> "Experiment":
        """A rule's `holdout` as an experiment: control `share`, the rule's action the rest."""
        arms = (Arm("control", share, control=True), Arm("treatment", 1 - share))
        return cls(rule, arms if share < 1 else arms[:1], salt=f"holdout:{rule}", **goal)
