"""Ingest: raw bytes of the touchpoints topic -> normalised touchpoints, or dead letters.

`ingest_batch` is the one entry point of both the worker's ingest stage and `parcours replay`, so a
backfill accepts and rejects exactly what the stream does. It never raises: every record becomes
either a normalised touchpoint or a dead-letter record.

What comes out is typed: `Touchpoint` (streams/ingest/touchpoint.py: each key, and how it is
derived) is what `normalise` builds, `IngestedTouchpoint` the same with where it was read; a
`DeadLetter` (here) is a refused record. `ingest_batch` returns both outcomes, named:
`Ingested(touchpoints, dead_letters)`.

Raw personal data does not pass: besides hashing the email and phone identifiers, any email address
found in another identifier value or in a string of context/properties (typically `?email=` in a
landing URL) is replaced by its hash (`pii.redact_emails`). Phone numbers in free text are not
detected. The dead-letter record, in contrast, keeps the original bytes for replay: it may hold raw
PII and its topic must be access-restricted.
"""
from __future__ import annotations

import base64
import math
import time
from datetime import datetime, timezone
from typing import Any, Iterable, NamedTuple, TypedDict

from schemas.codec import (
    CONTEXT_SPEC,
    DEFAULT_MAX_BYTES,
    PROPERTIES_SPEC,
    DecodeError,
    decode,
    known_field_ok,
    validate_touchpoint,
)
from streams.ingest.channels import campaign_params, derive_channel, referrer_host
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS, ahead_reason
from streams.ingest.declared import declared_traits
from streams.ingest.pii import HASHED_TYPES, hash_identifier, redact_emails
from streams.ingest.touchpoint import IngestedTouchpoint, Touchpoint

__all__ = [
    "DEAD_LETTER_OVERSIZED_KEEP",
    "MAX_EVENT_TIME_MS",
    "MAX_NESTING",
    "MIN_EVENT_TIME_MS",
    "DeadLetter",
    "Ingested",
    "InvalidTouchpoint",
    "dead_letter",
    "decode_and_normalise",
    "ingest_batch",
    "normalise",
]

MIN_EVENT_TIME_MS = 946_684_800_000    # 2000-01-01T00:00:00Z
MAX_EVENT_TIME_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z, exclusive
MAX_NESTING = 32
"""Deepest nesting accepted in the free-form extra fields of context/properties."""
DEAD_LETTER_OVERSIZED_KEEP = 65_536
"""Bytes of an oversized record kept in its dead letter: enough to identify the producer, small
enough for the dead-letter topic (the whole record would exceed the broker's message limit)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class InvalidTouchpoint(DecodeError):
    """A decoded record whose values break the touchpoint rules (kind "validation")."""


def _show(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _invalid(reason: str) -> InvalidTouchpoint:
    return InvalidTouchpoint("validation", reason)


# --- event time ----------------------------------------------------------------------------------

def _event_time_ms(value: Any) -> int:
    if isinstance(value, str):
        ms = _iso_to_ms(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
        if not MIN_EVENT_TIME_MS <= ms < MAX_EVENT_TIME_MS:
            hint = ("; it looks like seconds, send milliseconds"
                    if MIN_EVENT_TIME_MS <= ms * 1000 < MAX_EVENT_TIME_MS else "")
            raise _invalid(f"field 'event_time' {ms} is outside years 2000-2100 "
                           f"as epoch milliseconds{hint}")
        return ms
    else:
        raise _invalid(f"field 'event_time' has type {type(value).__name__}, "
                       "expected long or string")
    if not MIN_EVENT_TIME_MS <= ms < MAX_EVENT_TIME_MS:
        raise _invalid(f"field 'event_time' {_show(value)} is outside years 2000-2100")
    return ms


def _iso_to_ms(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        hint = " (epoch milliseconds must be a JSON number)" if text.strip().isdigit() else ""
        raise _invalid(f"field 'event_time' {_show(text)} is not an ISO 8601 "
                       f"timestamp{hint}") from None
    if dt.utcoffset() is None:
        raise _invalid(f"field 'event_time' {_show(text)} has no UTC offset (add 'Z' or '+01:00')")
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --- parts ---------------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _redacted(value: Any, path: str, depth: int = 0) -> Any:
    """`value` with email addresses in its strings, at any depth, replaced by their hash."""
    if isinstance(value, str):
        return redact_emails(value) if ("@" in value or "%40" in value) else value
    if depth >= MAX_NESTING and isinstance(value, (dict, list)):
        raise _invalid(f"field '{path}' nests deeper than {MAX_NESTING} levels")
    if isinstance(value, dict):
        return {k: _redacted(v, path, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v, path, depth + 1) for v in value]
    return value


def _clean(mapping: dict | None, name: str, spec: dict | None = None) -> dict:
    """Copy without nulls, with email addresses in strings replaced by their hash. With `spec`
    (`schemas.codec.CONTEXT_SPEC` or `PROPERTIES_SPEC`), also what `validate_touchpoint` checks of
    it, in the same loop; a failure then only says that the checked path must be taken."""
    if spec is not None and mapping is not None and mapping.__class__ is not dict:
        raise _Unchecked
    if not mapping:
        return {}
    out = {}
    for key, value in mapping.items():
        if value is None:
            continue
        if spec is not None:
            entry = spec.get(key)
            if entry is not None and value.__class__ not in entry[0] and not known_field_ok(
                    entry, value):
                raise _Unchecked
        if value.__class__ is str:  # the common case, inline (hot path)
            if "@" in value or "%40" in value:
                value = redact_emails(value)
        elif isinstance(value, (str, dict, list)):
            value = _redacted(value, f"{name}.{key}")
        out[key] = value
    return out


def _finite(properties: dict, key: str) -> None:
    value = properties.get(key)
    if value is None:
        return
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise _invalid(f"field 'properties.{key}' is not a finite number")
    properties[key] = value


def _properties(raw: dict | None, spec: dict | None = None) -> dict:
    properties = _clean(raw, "properties", spec)
    if properties:
        _finite(properties, "revenue")
        _finite(properties, "price")
        target = properties.get("channel")
        if isinstance(target, str):
            target = target.strip().lower()
            if target:
                properties["channel"] = target
            else:
                del properties["channel"]
    return properties


def _ids(raw: dict | None) -> dict[str, str]:
    if not raw:
        return {}
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None:
            continue
        kind = key.strip().lower()
        if not kind or kind in out:
            continue
        if kind in HASHED_TYPES:
            kept = hash_identifier(kind, value)
        else:
            kept = value.strip()  # what hash_identifier does for these types, inlined (hot path)
            if "@" in kept or "%40" in kept:
                kept = redact_emails(kept)  # an address used as a user id is still an address
        if kept:
            out[kind] = kept
    return out


# --- entry points --------------------------------------------------------------------------------

def normalise(record: dict, *, validated: bool = False) -> Touchpoint:
    """A decoded touchpoint -> the normalised `Touchpoint` (streams/ingest/touchpoint.py).

    Pass `validated=True` only for the output of `schemas.codec.decode` (or of
    `validate_touchpoint`), which already checked the field types; otherwise they are checked here.
    Raises `InvalidTouchpoint`.
    """
    if not validated:
        try:
            record = validate_touchpoint(record)
        except InvalidTouchpoint:
            raise
        except DecodeError as exc:
            raise InvalidTouchpoint(exc.kind, exc.reason) from None
    return _normalised(record, None, None)


class _Unchecked(Exception):
    """The one-pass path cannot tell the error: take the checked path, which names it."""


def _decode_normalised(raw: bytes, max_bytes: int, writers=None) -> Touchpoint:
    """`normalise(decode(raw), validated=True)`, with context and properties checked while they
    are copied (one loop over each instead of two). Any failure re-runs the checked path: the
    error, and which check comes first, are exactly that path's."""
    record = decode(raw, max_bytes=max_bytes, nested=False, writers=writers)
    try:
        return _normalised(record, CONTEXT_SPEC, PROPERTIES_SPEC)
    except Exception:  # noqa: BLE001 - the checked path raises the right error, or succeeds
        return normalise(validate_touchpoint(record), validated=True)


def _normalised(record: dict, context_spec: dict | None,
                properties_spec: dict | None) -> Touchpoint:
    event_time = _event_time_ms(record["event_time"])
    type_ = record["type"].strip().lower()
    context = _clean(record.get("context"), "context", context_spec)
    properties = _properties(record.get("properties"), properties_spec)
    if type_ == "identify" and "traits" in properties:  # zero-party data: streams.ingest.declared
        properties["traits"], refused = declared_traits(properties["traits"])
        if refused:
            raise _invalid(refused)
    url = context.get("url")
    referrer = context.get("referrer")

    channel = _text(record.get("channel"))
    channel = channel.lower() if channel else derive_channel(url, referrer, type_)
    campaign = _text(record.get("campaign"))
    publisher = _text(record.get("publisher"))
    if campaign is None or publisher is None:
        utm_campaign, utm_source = campaign_params(url)
        if campaign is None:
            campaign = utm_campaign
        if publisher is None:
            publisher = utm_source or referrer_host(referrer, url)

    return {
        "event_id": record["event_id"],
        "event_time": event_time,
        "type": type_,
        "channel": channel,
        "campaign": campaign,
        "publisher": publisher,
        "ids": _ids(record.get("ids")),
        "context": context,
        "properties": properties,
    }


def decode_and_normalise(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Touchpoint:
    """`decode` then `normalise`. Raises `DecodeError` (or its subclass `InvalidTouchpoint`)."""
    return normalise(decode(raw, max_bytes=max_bytes), validated=True)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class DeadLetter(TypedDict):
    """A record ingest refused (`touchpoints.dead-letter`; Avro schema schemas/dead_letter.avsc)."""

    reason: str  # readable, one line
    error: str  # decode, format, validation, oversized, clock, unreadable or internal
    topic: str | None  # where it was read (replay: the file, with the line as the offset)
    partition: int | None
    offset: int | None
    original: str  # base64 of the original bytes (may hold raw PII)
    received_at: int  # epoch ms: the batch's clock


def dead_letter(raw: bytes, exc: BaseException, *, topic: str | None = None,
                partition: int | None = None, offset: int | None = None,
                now_ms: int | None = None) -> DeadLetter:
    """The `DeadLetter` for `raw`, refused with `exc`.

    A `DecodeError` gives its kind and reason; any other exception is error "internal" with the
    exception type and text. `original` is base64 text (the JSON form of schemas/dead_letter.avsc;
    decode it to bytes for the Avro form). For an oversized record only the first
    `DEAD_LETTER_OVERSIZED_KEEP` bytes are kept; the reason states the full size.
    """
    if isinstance(exc, DecodeError):
        error, reason = exc.kind, exc.reason
    else:
        error, reason = "internal", _one_line(f"{type(exc).__name__}: {exc}")
    original = bytes(raw[:DEAD_LETTER_OVERSIZED_KEEP]) if error == "oversized" else bytes(raw)
    return {
        "reason": reason,
        "error": error,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original": base64.b64encode(original).decode("ascii"),
        "received_at": _now_ms() if now_ms is None else now_ms,
    }


def _as_bytes(raw: Any) -> bytes:
    if isinstance(raw, bytes):
        return raw
    if raw is None:  # a Kafka tombstone: refused as an empty record
        return b""
    if isinstance(raw, (bytearray, memoryview)):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    if isinstance(raw, DecodeError):  # what the consumer could not read (an unreadable batch)
        raise raw
    raise TypeError(f"record value has type {type(raw).__name__}, expected bytes")


class Ingested(NamedTuple):
    """Both outcomes of `ingest_batch`, named; still a pair: `good, dead = ingest_batch(...)`."""

    touchpoints: list[IngestedTouchpoint]
    dead_letters: list[DeadLetter]


def ingest_batch(raws: Iterable[tuple[bytes, str | None, int | None, int | None]], *,
                 max_bytes: int = DEFAULT_MAX_BYTES,
                 now_ms: int | None = None, max_future_ms: int = DEFAULT_MAX_FUTURE_MS,
                 source_key: str | None = None, source=None, offset_key: str | None = None,
                 convert=None, writers=None) -> Ingested:
    """(raw bytes, topic, partition, offset) records -> `Ingested(touchpoints, dead_letters)`.

    Never raises: a record ingest cannot accept becomes a dead letter, and an unexpected exception
    becomes a dead letter with error "internal". Every input yields exactly one output; order is
    kept within each list. Duplicate event_ids are kept (the pipeline deduplicates). `now_ms` is
    the batch's clock (default: the wall clock, read once per batch): the `received_at` of its dead
    letters, and an event more than `max_future_ms` ahead of it is refused with error "clock"
    (streams.ingest.clock: one record dated 2099 would otherwise carry the watermark to 2099).
    With `source_key`, each touchpoint also carries its input partition (or `source`, when given)
    under that key (the pipeline's watermark is per partition; it removes the key); with
    `offset_key`, its input offset too (the pipeline applies each input record once). `convert`
    turns each raw record into the raw touchpoint it stands for first (preference records); it
    raises `DecodeError` for a record it cannot use, and the dead letter keeps the original bytes.
    `writers`: a schema registry's writer schemas by id, for Confluent Avro (`codec.decode`).
    """
    normalised: list[IngestedTouchpoint] = []
    dead: list[DeadLetter] = []
    now = _now_ms() if now_ms is None else now_ms
    for item in raws:
        raw = b""
        topic = partition = offset = None
        try:
            value, topic, partition, offset = item
            raw = _as_bytes(value)
            tp = _decode_normalised(raw if convert is None else convert(raw), max_bytes, writers)
            if tp["event_time"] - now > max_future_ms:
                raise InvalidTouchpoint("clock", ahead_reason(tp["event_time"], now, max_future_ms))
            if source_key is not None:
                tp[source_key] = partition if source is None else source
            if offset_key is not None and offset is not None:
                tp[offset_key] = offset
            normalised.append(tp)
        except Exception as exc:  # noqa: BLE001 - the contract is "never raise"
            try:
                dead.append(dead_letter(raw, exc, topic=topic, partition=partition,
                                        offset=offset, now_ms=now))
            except Exception as inner:  # noqa: BLE001 - e.g. an exception whose str() fails
                dead.append(dead_letter(raw, RuntimeError(type(inner).__name__),
                                        topic=topic, partition=partition, offset=offset,
                                        now_ms=now))
    return Ingested(normalised, dead)
