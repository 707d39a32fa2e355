"""The experiment statistics against the textbook formulas computed here from the same counts
(with scipy's distributions only), and a seeded simulation: the 95% interval holds the true lift
in at least 93 of 100 experiments."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from streams.experiments import SRM_ALERT, ArmCounts, analyse


def _counts(arm: str, revenue: np.ndarray, converted: np.ndarray, control=False) -> ArmCounts:
    return ArmCounts(arm, control, len(revenue), int(converted.sum()), float(revenue.sum()),
                     float((revenue ** 2).sum()))


def _arms(rng, n0=4000, n1=4100, p0=0.05, p1=0.065):
    arms = {}
    for arm, n, p, control in (("control", n0, p0, True), ("A", n1, p1, False)):
        converted = rng.random(n) < p
        revenue = np.where(converted, rng.gamma(2.0, 60.0, n), 0.0)
        arms[arm] = (converted, revenue, _counts(arm, revenue, converted, control))
    return arms


def test_lift_interval_p_value_welch_and_srm_match_the_formulas():
    rng = np.random.default_rng(7)
    arms = _arms(rng)
    (_, r0, control), (_, r1, treated) = arms["control"], arms["A"]
    rows = {row["arm"]: row for row in analyse("exp", [treated, control],
                                               {"control": 0.5, "A": 0.5})}
    x1, n1, x0, n0 = treated.conversions, treated.profiles, control.conversions, control.profiles
    # lift and its interval: Katz's log method for the ratio of two proportions
    ratio = (x1 / n1) / (x0 / n0)
    se = math.sqrt(1 / x1 - 1 / n1 + 1 / x0 - 1 / n0)
    z = sps.norm.ppf(0.975)
    row = rows["A"]
    assert math.isclose(row["lift"], ratio - 1, rel_tol=1e-12)
    assert math.isclose(row["lift_ci_low"], ratio * math.exp(-z * se) - 1, rel_tol=1e-9)
    assert math.isclose(row["lift_ci_high"], ratio * math.exp(z * se) - 1, rel_tol=1e-9)
    # p-value: the pooled two-proportion z-test
    pooled = (x1 + x0) / (n1 + n0)
    zstat = (x1 / n1 - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert math.isclose(row["p_value"], 2 * sps.norm.sf(abs(zstat)), rel_tol=1e-9)
    # Welch's test on revenue per profile, from the profiles' own values
    v1, v0 = r1.var(ddof=1) / n1, r0.var(ddof=1) / n0
    t = (r1.mean() - r0.mean()) / math.sqrt(v1 + v0)
    df = (v1 + v0) ** 2 / (v1 ** 2 / (n1 - 1) + v0 ** 2 / (n0 - 1))
    assert math.isclose(row["revenue_p_value"], 2 * sps.t.sf(abs(t), df), rel_tol=1e-7)
    # sample-ratio mismatch: chi-square of the profiles against a 50/50 split
    expected = (n1 + n0) / 2
    chi = (n1 - expected) ** 2 / expected + (n0 - expected) ** 2 / expected
    assert math.isclose(row["srm_p_value"], sps.chi2.sf(chi, 1), rel_tol=1e-9)
    assert rows["control"]["lift"] is None and rows["control"]["p_value"] is None
    assert row["rate"] == x1 / n1 and math.isclose(row["revenue_per_profile"], r1.mean())


def test_the_95_percent_interval_holds_the_true_lift_in_at_least_93_of_100_experiments():
    rng = np.random.default_rng(2026)
    p0, true_lift = 0.04, 0.25
    inside = 0
    for _ in range(100):
        arms = _arms(rng, n0=6000, n1=6000, p0=p0, p1=p0 * (1 + true_lift))
        row = next(r for r in analyse("sim", [arms["control"][2], arms["A"][2]],
                                      {"control": 0.5, "A": 0.5}) if r["arm"] == "A")
        inside += row["lift_ci_low"] <= true_lift <= row["lift_ci_high"]
    assert inside >= 93, inside


def test_a_split_far_from_its_weights_is_flagged():
    arms = [ArmCounts("control", True, 1000, 50), ArmCounts("A", False, 1200, 70)]
    (row, *_) = analyse("exp", arms, {"control": 0.5, "A": 0.5})
    assert row["srm_p_value"] < SRM_ALERT
    (row, *_) = analyse("exp", arms, {"control": 1000 / 2200, "A": 1200 / 2200})
    assert row["srm_p_value"] > 0.5


def test_what_cannot_be_computed_is_none():
    no_control = analyse("exp", [ArmCounts("A", False, 100, 5), ArmCounts("B", False, 100, 7)],
                         {"A": 0.5, "B": 0.5})
    assert all(r["lift"] is None and r["p_value"] is None for r in no_control)
    nothing = analyse("exp", [ArmCounts("control", True, 100, 0), ArmCounts("A", False, 100, 0)],
                      {"control": 0.5, "A": 0.5})
    assert nothing[1]["lift"] is None and nothing[1]["p_value"] is None
    assert nothing[1]["revenue_p_value"] is None and nothing[1]["rate"] == 0
    empty = analyse("exp", [ArmCounts("control", True, 0, 0)], {"control": 1.0})
    assert empty == [{"experiment": "exp", "arm": "control", "control": True, "profiles": 0,
                      "conversions": 0, "rate": None, "revenue_per_profile": None, "lift": None,
                      "lift_ci_low": None, "lift_ci_high": None, "p_value": None,
                      "revenue_p_value": None, "srm_p_value": None}]
