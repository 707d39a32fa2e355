"""The preferences gate: every candidate trigger meets the person's consent, caps and quiet hours.

Read `gate.py` first (`PreferenceGate.decide`: fire, defer to the end of quiet hours, or suppress
with a reason; enter the profile in the rule's experiment), then `decision.py` (what it returns:
`Trigger`, `Suppression`, `Decision`), `quiet.py` (quiet hours in local time), `config.py` (the
gate's settings from the rule pack) and `records.py` (preference-centre records, which ingest
turns into consent touchpoints).
"""
from streams.lazy_exports import lazy

EXPORTS = {  # name -> the module that defines it
    "GateConfig": "streams.preferences.config",
    "Weights": "streams.preferences.config",
    "parse_duration": "streams.preferences.config",
    "Decision": "streams.preferences.decision",
    "Suppression": "streams.preferences.decision",
    "Trigger": "streams.preferences.decision",
    "PreferenceGate": "streams.preferences.gate",
    "preference_raw": "streams.preferences.records",
    "preference_touchpoint": "streams.preferences.records",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
