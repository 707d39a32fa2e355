"""Ingest: raw bytes from producers -> normalised touchpoints, or dead letters with their reason.

Read `normalise.py` first (one record: decode, validate, derive the channel, hash PII), then
`ingest_batch` at its end (a batch, both outcomes named). `channels.py` derives a channel from UTM
parameters, click ids and referrers; `pii.py` hashes identifiers and redacts e-mail addresses;
`clock.py` refuses events dated ahead of the clock; `preferences.py` takes preference-centre records
through the same path; `touchpoint.py` types what comes out.
"""
# `normalise` (one record) is imported from streams.ingest.normalise: the module has its name.
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.ingest.normalise import (
    DeadLetter,
    Ingested,
    InvalidTouchpoint,
    dead_letter,
    decode_and_normalise,
    ingest_batch,
)
from streams.ingest.preferences import ingest_preferences
from streams.ingest.touchpoint import (
    NOT_A_SOURCE,
    OFFSET,
    SOURCE,
    IngestedTouchpoint,
    StitchedTouchpoint,
    Touchpoint,
)

__all__ = [
    "DEFAULT_MAX_FUTURE_MS", "DeadLetter", "Ingested", "IngestedTouchpoint", "InvalidTouchpoint",
    "NOT_A_SOURCE", "OFFSET", "SOURCE", "StitchedTouchpoint", "Touchpoint", "dead_letter",
    "decode_and_normalise", "ingest_batch", "ingest_preferences",
]
