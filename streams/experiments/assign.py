"""The arm of a profile: a pure function of (experiment, profile id).

`u = first 8 bytes of sha256("<salt>:<profile id>")` as an integer in [0, 2^64); the arms, the
control first and the others in their written order, cover [0, 2^64) in proportion to their
shares, and the profile gets the arm whose span holds `u`. The salt is the experiment's (its id
by default), so two experiments split the same profiles independently; a rule's holdout keeps
the salt it always had ("holdout:<rule>"), so its control is the profiles it held out before.
The same in the worker and in `parcours replay`, on any partition, after any restart.
"""
from __future__ import annotations

import hashlib

from streams.experiments.model import Arm, Experiment

__all__ = ["arm_of", "unit"]

_SPAN = 2 ** 64


def unit(salt: str, profile_id: str) -> int:
    """The profile's point in [0, 2^64) for this salt."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{profile_id}".encode()).digest()[:8], "big")


def _ordered(experiment: Experiment) -> list[Arm]:
    return sorted(experiment.arms, key=lambda arm: not arm.control)  # stable: control first


def arm_of(experiment: Experiment, profile_id: str) -> Arm:
    u = unit(experiment.salt, profile_id)
    arms = _ordered(experiment)
    cumulative = 0.0
    for arm in arms[:-1]:
        cumulative += arm.share
        if u < cumulative * _SPAN:  # as the gate's holdout compares: share * 2^64
            return arm
    return arms[-1]
