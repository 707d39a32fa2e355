"""An experiment in the rule pack: arms written out or factors x levels, and every mistake
reported at its line by the loader (and so by `parcours rules check`)."""
from __future__ import annotations

from streams.experiments import Arm, Experiment
from tests.unit.moments.rules_text import DAY, HEAD, _text, errors, rule


def test_arms_with_a_control_and_overrides():
    r = rule("""
        - id: cart_abandoned
          when: {event: {type: add_to_cart}}
          action: {channels: [email], payload: {copy: short}}
          experiment:
            id: cart-copy-nov
            arms:
              - {id: control, weight: 10, control: true}
              - {id: A, weight: 45}
              - {id: B, weight: 45, action: {payload: {copy: long}, channels: [push]}}
            goal: {type: [purchase, subscription], within: 14d}
        """)
    e = r.experiment
    assert e.id == "cart-copy-nov" and e.salt == "experiment:cart-copy-nov"
    assert e.arms == (Arm("control", 0.10, control=True), Arm("A", 0.45),
                      Arm("B", 0.45, action={"channels": ("push",), "payload": {"copy": "long"}}))
    assert e.goal_types == ("purchase", "subscription") and e.within_ms == 14 * DAY
    assert r.holdout_pct == 0


def test_the_defaults_an_id_from_the_rule_and_a_purchase_within_7_days():
    r = rule("""
        - id: price_seen_then_left
          when: {event: {type: price_view}}
          action: {channels: [email]}
          experiment: {arms: [{id: control, weight: 50, control: true}, {id: A, weight: 50}]}
        """)
    assert r.experiment.id == "price_seen_then_left"
    assert r.experiment.goal_types == ("purchase",) and r.experiment.within_ms == 7 * DAY


def test_factors_make_every_combination_an_arm_sharing_what_the_control_leaves():
    r = rule("""
        - id: cart_abandoned
          when: {event: {type: add_to_cart}}
          action: {channels: [email], payload: {copy: short, tone: plain}}
          experiment:
            control: 20
            factors:
              copy: {short: {payload: {copy: short}}, long: {payload: {copy: long}}}
              channel: {push: {channels: [push]}, email: {}}
        """)
    arms = {arm.id: arm for arm in r.experiment.arms}
    assert list(arms) == ["control", "copy=short,channel=push", "copy=short,channel=email",
                          "copy=long,channel=push", "copy=long,channel=email"]
    assert arms["control"].control and arms["control"].share == 0.2
    assert all(abs(arm.share - 0.2) < 1e-12 for arm in r.experiment.arms)
    assert arms["copy=long,channel=push"].action == {"channels": ("push",),
                                                     "payload": {"copy": "long"}}
    assert arms["copy=long,channel=email"].action == {"payload": {"copy": "long"}}


def test_every_experiment_mistake_at_its_line():
    assert errors(HEAD + _text("""
        - id: weights
          when: {event: {type: a}}
          action: {channels: [web]}
          experiment:
            arms:
              - {id: control, weight: 10, control: true}
              - {id: A, weight: 45}
              - {id: A, weight: 40, control: true, action: {chanels: [push]}}
        - id: both
          when: {event: {type: a}}
          action: {channels: [web]}
          holdout: 10%
          experiment:
            arms: [{id: A, weight: 100}]
            factors: {copy: {a: {}, b: {}}}
        - id: values
          when: {event: {type: a}}
          action: {channels: [web]}
          experiment:
            id: Not An Id
            control: 100
            factors: {copy: {only: {payload: {x: "{code}"}}}}
            goal: {type: [], within: soon}
        """)) == [
        "t.yaml:8: rules[weights].experiment.arms: the weights sum to 95, not 100",
        "t.yaml:11: rules[weights].experiment.arms[2].id: arm id 'A' appears twice (first at "
        "line 10)",
        "t.yaml:11: rules[weights].experiment.arms[2].control: a second control arm (the first "
        "at line 9): at most one",
        "t.yaml:11: rules[weights].experiment.arms[2].action: the control arm sends nothing: "
        "it has no action",
        "t.yaml:11: rules[weights].experiment.arms[2].action: unknown override 'chanels' (did "
        "you mean 'channels'?)",
        "t.yaml:15: rules[both].holdout: a rule with an experiment has no holdout: its control "
        "arm is the holdout",
        "t.yaml:16: rules[both].experiment: needs arms (written out) or factors (every "
        "combination of their levels), one of the two",
        "t.yaml:23: rules[values].experiment.id: 'Not An Id' is not a valid id (lowercase "
        "letters, digits, _ and -, starting with a letter or a digit)",
        "t.yaml:24: rules[values].experiment.control: leaves nothing to test",
        "t.yaml:25: rules[values].experiment.factors.copy: a factor needs at least two levels",
        "t.yaml:25: rules[values].experiment.factors.copy.only.payload.x: '{code}' uses {code} "
        "but the action has no code",
        "t.yaml:26: rules[values].experiment.goal.type: expected a non-empty list of event "
        "types, not an empty list",
        "t.yaml:26: rules[values].experiment.goal.within: 'soon' is not a duration (use 500ms, "
        "30s, 5m, 1h, 1d, 2w)",
    ]


def test_a_holdout_alone_still_loads_as_before():
    r = rule("""
        - id: cart_abandoned
          when: {event: {type: add_to_cart}}
          action: {channels: [email]}
          holdout: 10%
        """)
    assert r.holdout_pct == 0.1
    # it means a control arm, assigned with the hash the holdout always used
    assert r.experiment == Experiment.holdout("cart_abandoned", 0.1)
    assert [(a.id, a.share, a.control) for a in r.experiment.arms] == [
        ("control", 0.1, True), ("treatment", 0.9, False)]
