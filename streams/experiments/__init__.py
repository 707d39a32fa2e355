"""Experiments: A/B/n variants of a moment's message with a control arm, and what they show.

Reading guide:
- `model`: an experiment (`Experiment`: arms with weights, at most one control, the goal that
  counts and its window), and the per-rule `holdout` read as a control arm;
- `assign`: the arm of a profile, a pure function of (experiment, profile): a salted hash, the
  same in the worker, in `parcours replay` and after any restart;
- `exposures`: a profile's entries (the gate enters it when the rule would first send it a
  message), their goal conversions in the window, what a merge keeps, and the
  `experiment_exposures` rows;
- `incrementality`: what a rule with a control arm caused (treated - control, scaled to the
  treated), split over its channels, beside attribution's credit;
- `stats`: per-arm counts to rates, relative lift against control with its 95% interval and
  p-value, Welch's test on revenue per profile, and the sample-ratio-mismatch check (scipy).

Plain data and functions: no Faust, no Kafka client, no ClickHouse.
"""
from streams.lazy_exports import lazy

EXPORTS = {
    "Arm": "streams.experiments.model",
    "Experiment": "streams.experiments.model",
    "ExperimentError": "streams.experiments.model",
    "arm_of": "streams.experiments.assign",
    "ExposureRow": "streams.experiments.exposures",
    "RuleLift": "streams.experiments.incrementality",
    "ArmCounts": "streams.experiments.stats",
    "analyse": "streams.experiments.stats",
    "SRM_ALERT": "streams.experiments.stats",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
