"""The normalised touchpoint: what ingest hands to the pipeline, typed.

Plain dicts at run time (a TypedDict is only a name for the keys a dict holds): `Touchpoint` is
what `normalise()` builds, `IngestedTouchpoint` what `ingest_batch` hands on (with where it was
read), `StitchedTouchpoint` what the pipeline emits (with the profile it resolved to).
"""
from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["NOT_A_SOURCE", "OFFSET", "SOURCE", "IngestedTouchpoint", "StitchedTouchpoint",
           "Touchpoint"]

SOURCE = "_src"  # set by ingest on each touchpoint: its input partition (the watermark's source)
OFFSET = "_off"  # set by ingest on each touchpoint: its input offset (re-deliveries are skipped)
NOT_A_SOURCE = "-"  # `_src` of records that must not move the watermark (preferences)


class Touchpoint(TypedDict):
    """The normalised touchpoint, as `streams.ingest.normalise.normalise` builds it: every key is
    always present.

    Null values are dropped from `context` and `properties`, so the JSON form and the Avro form of a
    touchpoint (where every optional field is present, mostly null) normalise to the same dict. Raw
    personal data does not pass: email and phone identifiers are hashed, and any email address
    found in another identifier value or in a string of context/properties is replaced by its hash
    (`streams.ingest.pii`).
    """

    event_id: str
    """As received (non-blank)."""
    event_time: int
    """Epoch milliseconds UTC, from epoch ms or ISO 8601 with an offset or "Z", within years
    2000-2100 (catches seconds sent as milliseconds); `ingest_batch` also refuses one more than
    `max_future_ms` ahead of its clock (streams.ingest.clock)."""
    type: str
    """Stripped and lower-cased."""
    channel: str
    """Stripped and lower-cased; derived (streams.ingest.channels) when missing or blank."""
    campaign: str | None
    """The event's, else utm_campaign of context.url."""
    publisher: str | None
    """The event's, else utm_source, else the external referrer host."""
    ids: dict[str, str]
    """{type: value}: types stripped and lower-cased; email/phone normalised and SHA-256 hashed
    (streams.ingest.pii); unusable values dropped; {} for an anonymous event."""
    context: dict[str, Any]
    """As received minus null values; {} when absent (extra fields kept, nested at most
    `MAX_NESTING` levels)."""
    properties: dict[str, Any]
    """As received minus null values; {} when absent; revenue and price are finite floats;
    properties.channel (consent target) is lower-cased."""


class IngestedTouchpoint(Touchpoint, total=False):
    """A touchpoint out of `ingest_batch`: with `source_key=SOURCE` and `offset_key=OFFSET` it also
    carries where it was read. The pipeline removes both keys before any stage sees it."""

    _src: int | str | None
    """SOURCE: its input partition (the watermark's source), or NOT_A_SOURCE (preferences)."""
    _off: int
    """OFFSET: its input offset (a record delivered twice is applied once)."""


class StitchedTouchpoint(Touchpoint):
    """A touchpoint as the stages see it and `touchpoints.stitched` carries it."""

    profile_id: str
    """The profile identity resolved it to; "" for an anonymous event."""
