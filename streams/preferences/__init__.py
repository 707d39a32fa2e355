"""The preferences gate: every candidate trigger meets the person's consent, caps and quiet hours.

Read `gate.py` first (`PreferenceGate.decide`: fire, defer to the end of quiet hours, or suppress
with a reason), then `config.py` (the gate's settings from the rule pack) and `records.py`
(preference-centre records, which ingest turns into consent touchpoints).
"""
from streams.preferences.config import GateConfig, Weights, parse_duration
from streams.preferences.gate import Decision, PreferenceGate
from streams.preferences.records import preference_raw, preference_touchpoint

__all__ = ["Decision", "GateConfig", "PreferenceGate", "Weights", "parse_duration",
           "preference_raw", "preference_touchpoint"]
