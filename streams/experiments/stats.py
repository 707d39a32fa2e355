"""What an experiment shows, from per-arm counts (intention-to-treat: every entry counts).

Per arm: profiles entered, profiles that reached the goal within the window, revenue (its sum
and sum of squares over profiles, so that the counts can come straight from a ClickHouse
aggregate). Against the control arm, for each other arm:

- **lift**: the relative change in conversion rate, treated / control - 1, with its 95% interval
  from the ratio of the two rates (`scipy.stats.contingency.relative_risk`, Katz's log method);
- **p-value**: the two-sided test that both arms convert alike (`scipy.stats.chi2_contingency`
  on the 2 x 2 table without continuity correction: the two-proportion z-test);
- **Welch's test** on revenue per profile (`scipy.stats.ttest_ind_from_stats`, unequal variances).

For the experiment: the **sample-ratio mismatch** check, a chi-square test of the arms' profiles
against their weights (`scipy.stats.chisquare`); below `SRM_ALERT` the split is not the one
configured and the results should not be trusted (an assignment or logging bug).

A figure that cannot be computed (no control arm, no conversion in either arm, fewer than two
profiles) is None, never a made-up number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ArmCounts", "SRM_ALERT", "analyse"]

SRM_ALERT = 0.001
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ArmCounts:
    arm: str
    control: bool
    profiles: int
    conversions: int
    revenue: float = 0.0  # sum over the arm's profiles of the goal revenue in the window
    revenue_sq: float = 0.0  # sum of each profile's revenue squared

    @property
    def rate(self) -> float | None:
        return self.conversions / self.profiles if self.profiles else None

    @property
    def revenue_per_profile(self) -> float | None:
        return self.revenue / self.profiles if self.profiles else None

    def revenue_std(self) -> float | None:
        """The sample standard deviation of revenue per profile (None below two profiles)."""
        n = self.profiles
        if n < 2:
            return None
        mean = self.revenue / n
        return math.sqrt(max(0.0, (self.revenue_sq - n * mean * mean) / (n - 1)))


def _lift(treated: ArmCounts, control: ArmCounts) -> tuple[float | None, float | None,
                                                            float | None]:
    from scipy.stats.contingency import relative_risk

    if not treated.profiles or not control.profiles or not control.conversions:
        return None, None, None
    result = relative_risk(treated.conversions, treated.profiles, control.conversions,
                           control.profiles)
    if not treated.conversions:
        return -1.0, None, None  # no conversion at all in the arm: the interval is unbounded
    low, high = result.confidence_interval(CONFIDENCE)
    return float(result.relative_risk) - 1, float(low) - 1, float(high) - 1


def _p_value(treated: ArmCounts, control: ArmCounts) -> float | None:
    from scipy.stats import chi2_contingency

    table = [[treated.conversions, treated.profiles - treated.conversions],
             [control.conversions, control.profiles - control.conversions]]
    if not all(sum(row) for row in table) or not all(sum(col) for col in zip(*table)):
        return None  # an empty row or column: nothing to compare
    return float(chi2_contingency(table, correction=False).pvalue)


def _welch(treated: ArmCounts, control: ArmCounts) -> float | None:
    from scipy.stats import ttest_ind_from_stats

    s1, s0 = treated.revenue_std(), control.revenue_std()
    if s1 is None or s0 is None or (s1 == 0 and s0 == 0):
        return None
    return float(ttest_ind_from_stats(treated.revenue_per_profile, s1, treated.profiles,
                                      control.revenue_per_profile, s0, control.profiles,
                                      equal_var=False).pvalue)


def srm_p_value(arms: list[ArmCounts], weights: dict[str, float]) -> float | None:
    """The chi-square test of the arms' profiles against the configured weights."""
    from scipy.stats import chisquare

    total = sum(a.profiles for a in arms)
    if total == 0 or len(arms) < 2:
        return None
    share = sum(weights.get(a.arm, 0.0) for a in arms)
    expected = [total * weights.get(a.arm, 0.0) / share for a in arms]
    if any(e <= 0 for e in expected):
        return None
    return float(chisquare([a.profiles for a in arms], f_exp=expected).pvalue)


def analyse(experiment: str, arms: list[ArmCounts], weights: dict[str, float]) -> list[dict]:
    """One row per arm (control first): the JSON form of `parcours experiments`."""
    control = next((a for a in arms if a.control), None)
    srm = srm_p_value(arms, weights)
    rows = []
    for a in sorted(arms, key=lambda a: (not a.control, a.arm)):
        lift = low = high = p = welch = None
        if control is not None and a is not control:
            lift, low, high = _lift(a, control)
            p, welch = _p_value(a, control), _welch(a, control)
        rows.append({"experiment": experiment, "arm": a.arm, "control": a.control,
                     "profiles": a.profiles, "conversions": a.conversions, "rate": a.rate,
                     "revenue_per_profile": a.revenue_per_profile, "lift": lift,
                     "lift_ci_low": low, "lift_ci_high": high, "p_value": p,
                     "revenue_p_value": welch, "srm_p_value": srm})
    return rows
