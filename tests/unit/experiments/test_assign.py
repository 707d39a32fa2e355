"""The arm of a profile: stable, in proportion to the weights, independent between experiments,
and a rule's holdout keeps the profiles the gate held out before."""
from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from streams.experiments import Arm, Experiment, ExperimentError, arm_of

PROFILES = [f"p-{i:020x}" for i in range(40_000)]


def _experiment(id_: str = "cart-copy-nov") -> Experiment:
    return Experiment(id_, (Arm("control", 0.10, control=True), Arm("A", 0.45), Arm("B", 0.45)))


def test_the_arm_is_a_pure_function_of_experiment_and_profile():
    one, again = _experiment(), _experiment()
    assert [arm_of(one, p).id for p in PROFILES[:500]] == [arm_of(again, p).id
                                                            for p in PROFILES[:500]]


def test_the_arms_get_their_weights():
    counts = Counter(arm_of(_experiment(), p).id for p in PROFILES)
    for arm, share in (("control", 0.10), ("A", 0.45), ("B", 0.45)):
        assert abs(counts[arm] / len(PROFILES) - share) < 0.01, counts


def test_two_experiments_split_the_same_profiles_independently():
    first = [arm_of(_experiment("one"), p).id for p in PROFILES]
    second = [arm_of(_experiment("two"), p).id for p in PROFILES]
    joint = Counter(zip(first, second))
    for a in ("control", "A", "B"):
        for b in ("control", "A", "B"):
            expected = len(PROFILES) * _experiment().weights()[a] * _experiment().weights()[b]
            assert abs(joint[a, b] - expected) < 5 * expected ** 0.5, (a, b, joint)


def test_a_rule_holdout_is_a_control_arm_over_the_profiles_the_gate_held_out():
    experiment = Experiment.holdout("cart_abandoned", 0.1)
    for p in PROFILES[:5000]:  # the gate's own test: sha256("holdout:<rule>:<pid>") < share
        u = int.from_bytes(hashlib.sha256(f"holdout:cart_abandoned:{p}".encode()).digest()[:8],
                           "big")
        assert arm_of(experiment, p).control == (u < 0.1 * 2 ** 64)


@pytest.mark.parametrize("arms, message", [
    ((Arm("c", 0.1, control=True), Arm("A", 0.45), Arm("B", 0.40)), "weights sum to 95, not 100"),
    ((Arm("c", 0.5, control=True), Arm("d", 0.5, control=True)), "2 control arms"),
    ((Arm("A", 0.5), Arm("A", 0.5)), "arm ids repeat"),
    ((Arm("A", 0.0), Arm("B", 1.0)), "arm A has weight 0"),
    ((), "no arms"),
])
def test_an_experiment_that_cannot_run_says_why(arms, message):
    with pytest.raises(ExperimentError, match=message):
        Experiment("x", arms)
