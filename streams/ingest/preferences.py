"""Preference-centre records through ingest: each becomes a `consent` touchpoint that does not move
the stream's event time (streams/preferences/records.py says what a record holds)."""
from __future__ import annotations

from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.ingest.normalise import Ingested, ingest_batch
from streams.ingest.touchpoint import NOT_A_SOURCE, SOURCE
from streams.preferences.records import preference_raw


def ingest_preferences(raws, *, max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> Ingested:
    """`ingest_batch` for preference-centre records: consent touchpoints marked as outside the
    stream's event time (the worker's preferences topic and `parcours replay --preferences`).
    A record dated ahead of the clock is refused like a touchpoint (it would outrank every later
    decision)."""
    return ingest_batch(raws, source_key=SOURCE, source=NOT_A_SOURCE, convert=preference_raw,
                        max_future_ms=max_future_ms)
