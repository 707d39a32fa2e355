"""Ingest: raw bytes from producers -> normalised touchpoints, or dead letters with their reason.

Read `normalise.py` first (one record: decode, validate, derive the channel, hash PII), then
`ingest_batch` at its end (a batch, both outcomes named). `channels.py` derives a channel from UTM
parameters, click ids and referrers; `pii.py` hashes identifiers and redacts e-mail addresses;
`clock.py` refuses events dated ahead of the clock; `preferences.py` takes preference-centre records
through the same path; `touchpoint.py` types what comes out.
"""
from streams.lazy_exports import lazy

# `normalise` (one record) is imported from streams.ingest.normalise: the module has its name.
EXPORTS = {  # name -> the module that defines it
    "DEFAULT_MAX_FUTURE_MS": "streams.ingest.clock",
    "DeadLetter": "streams.ingest.normalise",
    "Ingested": "streams.ingest.normalise",
    "InvalidTouchpoint": "streams.ingest.normalise",
    "dead_letter": "streams.ingest.normalise",
    "decode_and_normalise": "streams.ingest.normalise",
    "ingest_batch": "streams.ingest.normalise",
    "ingest_preferences": "streams.ingest.preferences",
    "IngestedTouchpoint": "streams.ingest.touchpoint",
    "NOT_A_SOURCE": "streams.ingest.touchpoint",
    "OFFSET": "streams.ingest.touchpoint",
    "SOURCE": "streams.ingest.touchpoint",
    "StitchedTouchpoint": "streams.ingest.touchpoint",
    "Touchpoint": "streams.ingest.touchpoint",
}
__all__, __getattr__ = lazy(__name__, EXPORTS)
