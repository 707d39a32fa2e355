"""A rule's `experiment:` block, read with every mistake reported at its line.

Either arms written out:

    experiment:
      id: cart-copy-nov                  # default: the rule id
      arms:                              # weights in percent, summing to 100
        - {id: control, weight: 10, control: true}   # withheld, recorded
        - {id: A, weight: 45}                        # the rule's own action
        - {id: B, weight: 45, action: {payload: {copy: long}, channels: [push]}}
      goal: {type: [purchase], within: 7d}           # default: purchase within 7 days

or a multivariate test, factors x levels:

    experiment:
      control: 10                        # percent withheld (optional)
      factors:                           # each level overrides part of the action
        copy: {short: {payload: {copy: short}}, long: {payload: {copy: long}}}
        channel: {push: {channels: [push]}, email: {channels: [email]}}

where every combination of one level per factor is an arm ("copy=short,channel=push", ...) and
the arms share what the control leaves equally. Overrides are the action's `channels` and
`payload` (payloads of several levels merge; one level at most sets channels). A rule with an
experiment has no `holdout`: the control arm is its holdout.
"""
from __future__ import annotations

import itertools

import yaml

from streams.experiments.model import DEFAULT_GOAL, DEFAULT_WITHIN_MS, Arm, Experiment
from streams.moments.rules import syntax
from streams.moments.rules.syntax import parse_duration

__all__ = ["ExperimentReader"]

_KEYS = ("id", "arms", "factors", "control", "goal")
_ARM_KEYS = ("id", "weight", "control", "action")
_OVERRIDE_KEYS = ("channels", "payload")


def _weight(value) -> float:
    if not 0 < syntax.number(value) <= 100:
        raise ValueError(f"{value!r} is not a weight in percent (more than 0, at most 100)")
    return float(value)


class ExperimentReader:
    """Mixed into the pack's builder (a `NodeReader` with `payload`)."""

    def experiment(self, node: yaml.Node | None, path: str, rule_id: str | None,
                   has_code: bool) -> Experiment | None:
        entries = self.mapping(node, path, _KEYS)
        if entries is None:
            return None
        before = len(self.errors)
        exp_id = self.get(entries, "id", path, syntax.rule_id, rule_id)
        if ("arms" in entries) == ("factors" in entries):
            self.error(node, path, "needs arms (written out) or factors (every combination of "
                                   "their levels), one of the two")
            return None
        if "arms" in entries:
            if "control" in entries:
                self.error(entries["control"], f"{path}.control",
                           "with arms, mark the control arm (control: true) instead")
            arms = self._arms(entries["arms"], f"{path}.arms", has_code)
        else:
            arms = self._factors(entries, path, has_code)
        goal = self.mapping(entries.get("goal"), f"{path}.goal", ("type", "within")) or {}
        types = (self.items(goal["type"], f"{path}.goal.type", syntax.text, "list of event types")
                 if "type" in goal else DEFAULT_GOAL)
        within = self.get(goal, "within", f"{path}.goal", syntax.positive(parse_duration),
                          DEFAULT_WITHIN_MS)
        if len(self.errors) > before or exp_id is None or not arms:
            return None
        return Experiment(exp_id, tuple(arms), goal_types=tuple(types), within_ms=within)

    def _arms(self, node: yaml.Node, path: str, has_code: bool) -> list[Arm]:
        arms, first, control_at = [], {}, None
        total = 0.0
        for i, arm_node in enumerate(self.sequence(node, path, "list of arms")):
            at = f"{path}[{i}]"
            entries = self.mapping(arm_node, at, _ARM_KEYS, required=("id", "weight")) or {}
            arm_id = self.get(entries, "id", at, lambda v: syntax.text(str(syntax.scalar(v))))
            weight = self.get(entries, "weight", at, _weight)
            control = self.get(entries, "control", at, syntax.boolean, False)
            if arm_id in first:
                self.error(entries["id"], f"{at}.id", f"arm id '{arm_id}' appears twice (first "
                                                      f"at line {first[arm_id]})")
            elif arm_id is not None:
                first[arm_id] = entries["id"].start_mark.line + 1
            if control and control_at is not None:
                self.error(entries["control"], f"{at}.control",
                           f"a second control arm (the first at line {control_at}): at most one")
            elif control:
                control_at = entries["control"].start_mark.line + 1
            if control and "action" in entries:
                self.error(entries["action"], f"{at}.action", "the control arm sends nothing: "
                                                              "it has no action")
            action = self._override(entries.get("action"), f"{at}.action", has_code)
            total += weight or 0.0
            if arm_id is not None and weight is not None:
                arms.append(Arm(str(arm_id), weight / 100, control=bool(control), action=action))
        if arms and len(arms) == len(node.value) and abs(total - 100) > 1e-9:
            self.error(node, path, f"the weights sum to {total:g}, not 100")
        return arms

    def _factors(self, entries: dict, path: str, has_code: bool) -> list[Arm]:
        control = self.get(entries, "control", path, _weight, 0.0)
        factors = self.mapping(entries["factors"], f"{path}.factors") or {}
        levels: list[list[tuple[str, dict, yaml.Node]]] = []
        for name, factor_node in factors.items():
            at = f"{path}.factors.{name}"
            options = self.mapping(factor_node, at, noun="level") or {}
            if len(options) < 2:
                self.error(factor_node, at, "a factor needs at least two levels")
            levels.append([(f"{name}={level}", self._override(value, f"{at}.{level}", has_code),
                            value) for level, value in options.items()])
        if not levels or not all(levels) or control is None or control >= 100:
            if control is not None and control >= 100:
                self.error(entries["control"], f"{path}.control", "leaves nothing to test")
            return []
        arms = [Arm("control", control / 100, control=True)] if control else []
        combos = list(itertools.product(*levels))
        share = (1 - control / 100) / len(combos)
        for combo in combos:
            action: dict = {}
            for label, override, node in combo:
                if "channels" in override and "channels" in action:
                    self.error(node, f"{path}.factors", f"{label} sets channels, and so does "
                                                        "another factor's level: one at most")
                action = {**action, **override,
                          "payload": {**action.get("payload", {}), **override.get("payload", {})}}
            if not action["payload"]:
                del action["payload"]
            arms.append(Arm(",".join(label for label, _, _ in combo), share, action=action))
        return arms

    def _override(self, node: yaml.Node | None, path: str, has_code: bool) -> dict:
        entries = self.mapping(node, path, _OVERRIDE_KEYS, noun="override")
        if entries is None:
            return {}
        action: dict = {}
        if "channels" in entries:
            action["channels"] = self.items(entries["channels"], f"{path}.channels",
                                            syntax.channel, "list of channels")
        if "payload" in entries:
            action["payload"] = self.payload(entries["payload"], f"{path}.payload", has_code)
        return action
