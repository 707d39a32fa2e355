"""Wire formats: bytes of the touchpoints topic -> a dict that satisfies the Touchpoint contract.

Two formats are accepted, told apart by the first byte:

- JSON (orjson) when the first non-whitespace byte is `{` (or `[`, which then fails as "not an
  object");
- Confluent Avro when the first byte is 0x00: a 4-byte big-endian schema id then the Avro binary
  body. Without a schema registry the ids are the local ones (`schemas/registry.json`) and only
  schema id 1 (touchpoint) is accepted as input; with one, the caller passes `writers`, the
  registry's writer schemas by id, resolved into the touchpoint contract by the shell
  (schemas/confluent/writers.py), and every id is the registry's.

Anything else is rejected without parsing. Every failure is a `DecodeError` whose `kind` says which
stage refused the record and whose `reason` is one readable line for the dead-letter topic.

The contract check (`validate_touchpoint`) is written by hand rather than by calling
fastavro.validation: it runs on every event, and a few isinstance checks with precise messages
are both faster and more useful to a producer than "record does not match".
tests/unit/schemas/test_codec.py proves it agrees with fastavro.validation.validate on generated
good and bad records. Two deliberate leniencies for JSON producers: `null` means "absent" for
optional fields, including `ids: null` and `null` values inside `ids` (dropped). Two deliberate
strictnesses: `event_id` and `type` must not be empty or blank.

Values are only type-checked here; meaning (timestamp syntax and range, finite revenue, hashing)
is `streams.ingest.normalise.normalise`.
"""
from __future__ import annotations

import base64
import io
import struct
from typing import Any, Mapping

import fastavro
import orjson

from schemas import registry
from streams.errors import InputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DecodeError",
    "decode",
    "decode_avro",
    "encode_avro",
    "encode_json",
    "validate_touchpoint",
]

# a touchpoint is ~1 KB; the cap keeps every output under the producer batch size
DEFAULT_MAX_BYTES = 262_144
MAGIC_BYTE = 0
_HEADER = struct.Struct(">BI")  # magic byte, schema id
_JSON_WHITESPACE = b" \t\r\n"
_TOUCHPOINT_ID = registry.schema_id("touchpoint")
_TOUCHPOINT_READER = registry.reader_schema("touchpoint")

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class DecodeError(InputError):
    """A record that cannot become a touchpoint.

    `kind` is the stage that refused it: "decode" (bytes do not parse: bad JSON, truncated Avro),
    "format" (unknown wire format or schema id), "validation" (parsed, but breaks the contract),
    "oversized" (larger than the limit, not parsed), "clock" (event time further ahead of ingest's
    clock than the tolerance: streams.ingest.clock). `reason` is one readable line.
    """

    KINDS = frozenset({"decode", "format", "validation", "oversized", "clock"})

    def __init__(self, kind: str, reason: str) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"unknown {type(self).__name__} kind {kind!r}")
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def __reduce__(self):  # picklable with its two arguments (multiprocessing, Faust)
        return type(self), (self.kind, self.reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind!r}, {self.reason!r})"


# --- decode --------------------------------------------------------------------------------------

def decode(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, nested: bool = True,
           writers: Mapping[int, Any] | None = None) -> dict:
    """Bytes from the touchpoints topic -> a dict satisfying the Touchpoint contract.

    Raises `DecodeError`. The dict is the record as sent (unknown JSON fields kept), except that
    `null` values inside `ids` are dropped. With `nested=False` the known fields of context and
    properties are not checked (`validate_touchpoint`): for a caller that checks them itself.
    `writers` (a schema registry's, by id: `schemas.confluent.Writer`) replaces the local ids for
    Confluent-framed records; an id it lacks, or one it refuses, is a "format" error.
    """
    size = len(raw)
    if size > max_bytes:
        raise DecodeError("oversized", f"record of {size} bytes exceeds the {max_bytes}-byte limit")
    if size == 0:
        raise DecodeError("format", "empty record (0 bytes)")
    first = raw[0]
    if first == 0x7B:  # "{": the common case, no scan
        record = _decode_json(raw)
    elif first == MAGIC_BYTE:
        record = _decode_confluent_touchpoint(raw, writers)
    else:
        stripped = bytes(raw).lstrip(_JSON_WHITESPACE) if first in _JSON_WHITESPACE else raw
        lead = stripped[:1]
        if lead in (b"{", b"["):
            record = _decode_json(raw)
        elif not lead:
            raise DecodeError("format", f"record of {size} bytes holds only whitespace")
        else:
            raise DecodeError("format", f"unknown wire format: first byte {_show_byte(lead[0])}; "
                                        "expected '{' (JSON) or 0x00 (Confluent Avro)")
    return validate_touchpoint(record, nested=nested)


def _show_byte(b: int) -> str:
    return f"0x{b:02x} ({chr(b)!r})" if 0x20 < b < 0x7F else f"0x{b:02x}"


def _decode_json(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise DecodeError("decode", _json_error(raw, exc)) from None


def _json_error(raw: bytes, exc: orjson.JSONDecodeError) -> str:
    if "UTF-8" in exc.msg:
        try:
            bytes(raw).decode("utf-8")
        except UnicodeDecodeError as ude:
            return (f"invalid JSON at byte {ude.start}: not valid UTF-8 "
                    f"(byte 0x{raw[ude.start]:02x})")
        return f"invalid JSON: {exc.msg}"
    # orjson reports a character position in the decoded text; producers think in bytes
    doc = exc.doc if isinstance(exc.doc, str) else ""
    pos = len(doc[: exc.pos].encode("utf-8", "surrogatepass")) if doc else exc.pos
    return f"invalid JSON at byte {pos}: {exc.msg}"


def _decode_confluent_touchpoint(raw: bytes, writers: Mapping[int, Any] | None) -> dict:
    sid = _read_header(raw)
    if writers is not None:  # the registry's ids: the writer's schema, resolved to the contract
        writer = writers.get(sid)
        if writer is None:
            raise DecodeError("format", f"schema id {sid} is not in the schema registry")
        if writer.refusal:
            raise DecodeError("format", writer.refusal)
        return _read_avro_body(raw, writer.name, writer.schema, _TOUCHPOINT_READER)
    if sid != _TOUCHPOINT_ID:
        try:
            name = registry.name_for_id(sid)
        except registry.UnknownSchema:
            raise DecodeError("format", f"unknown schema id {sid}") from None
        raise DecodeError("format", f"schema id {sid} ({name}) is not accepted as input; "
                                    f"touchpoints use schema id {_TOUCHPOINT_ID} (touchpoint)")
    return _read_avro_body(raw, "touchpoint", _TOUCHPOINT_READER)


def _read_header(raw: bytes) -> int:
    if len(raw) < _HEADER.size:
        raise DecodeError("decode", f"truncated Confluent header: {len(raw)} bytes, "
                                    f"expected at least {_HEADER.size}")
    magic, sid = _HEADER.unpack_from(raw)
    if magic != MAGIC_BYTE:
        raise DecodeError("format", f"unknown wire format: first byte {_show_byte(magic)}")
    return sid


def _read_avro_body(raw: bytes, name: str, parsed: Any, reader: Any = None) -> Any:
    buf = io.BytesIO(raw)
    buf.seek(_HEADER.size)
    try:
        value = fastavro.schemaless_reader(buf, parsed, reader)
    except Exception as exc:
        # fastavro raises EOFError, UnicodeDecodeError, ValueError, ... on bad bytes
        detail = str(exc).strip() or "unexpected end of data"
        raise DecodeError("decode", f"invalid Avro body for schema {name}: "
                                    f"{type(exc).__name__}: {_one_line(detail)}") from None
    extra = len(raw) - buf.tell()
    if extra:
        raise DecodeError("decode", f"invalid Avro body for schema {name}: "
                                    f"{extra} bytes left after the record")
    return value


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- contract check ------------------------------------------------------------------------------

def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_long(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _LONG_MIN <= v <= _LONG_MAX


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and _INT_MIN <= v <= _INT_MAX


def _is_double(v: Any) -> bool:
    return isinstance(v, (float, int)) and not isinstance(v, bool)


def _is_boolean(v: Any) -> bool:
    return isinstance(v, bool)


_CHECKS = {"string": _is_str, "long": _is_long, "int": _is_int, "double": _is_double,
           "boolean": _is_boolean}

# Optional fields of touchpoint.avsc: name -> Avro type. tests/unit/schemas/test_codec.py checks
# these tables against the schema, so a field added to the .avsc without a line here fails the
# tests.
TOP_LEVEL_OPTIONAL = {"channel": "string", "campaign": "string", "publisher": "string"}
CONTEXT_FIELDS = {"url": "string", "referrer": "string", "store_id": "string",
                  "beacon_id": "string", "tz": "string", "user_agent": "string", "lat": "double",
                  "lon": "double"}
PROPERTIES_FIELDS = {"product_id": "string", "currency": "string", "order_id": "string",
                     "channel": "string", "quiet_hours": "string", "price": "double",
                     "revenue": "double", "in_stock": "boolean", "opt_in": "boolean",
                     "max_per_day": "int"}

# Fast path: exact Python types that are always valid for an Avro type (orjson and fastavro build
# exact types). Anything else (None aside) goes through `_CHECKS`, which handles subclasses and the
# int ranges; "int" has no fast path because every int needs its 32-bit range checked.
_FAST_TYPES = {"string": frozenset({str}), "double": frozenset({float, int}),
               "boolean": frozenset({bool}), "long": frozenset(), "int": frozenset()}
_CONTEXT_SPEC = {k: (_FAST_TYPES[t], t) for k, t in CONTEXT_FIELDS.items()}
_PROPERTIES_SPEC = {k: (_FAST_TYPES[t], t) for k, t in PROPERTIES_FIELDS.items()}


CONTEXT_SPEC = _CONTEXT_SPEC  # for a caller checking context/properties itself (nested=False)
PROPERTIES_SPEC = _PROPERTIES_SPEC


def known_field_ok(entry: tuple, value: Any) -> bool:
    """Whether `value` (not None) suits `entry`, a spec's entry for a known nested field."""
    return type(value) in entry[0] or _CHECKS[entry[1]](value)


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def _invalid(reason: str) -> DecodeError:
    return DecodeError("validation", reason)


def _wrong_type(path: str, value: Any, expected: str) -> DecodeError:
    if expected in ("long", "int") and isinstance(value, int) and not isinstance(value, bool):
        return _invalid(f"field '{path}' value {value} is outside the {expected} range")
    return _invalid(f"field '{path}' has type {_type_name(value)}, expected {expected}")


def _check_required_text(record: dict, name: str) -> None:
    value = record.get(name)
    if value is None:
        raise _invalid(f"missing field '{name}'")
    if not isinstance(value, str):
        raise _wrong_type(name, value, "string")
    if not value or value.isspace():
        raise _invalid(f"field '{name}' is empty")


def _check_record(path: str, value: Any, spec: dict) -> None:
    """Check the known fields of a nested record; unknown keys are allowed (and kept)."""
    if not isinstance(value, dict):
        raise _invalid(f"field '{path}' has type {_type_name(value)}, expected object or null")
    for key, v in value.items():
        if v is None:
            continue
        entry = spec.get(key)
        if entry is None or type(v) in entry[0]:
            continue
        avro_type = entry[1]
        if not _CHECKS[avro_type](v):
            raise _wrong_type(f"{path}.{key}", v, avro_type)


def validate_touchpoint(record: Any, *, nested: bool = True) -> dict:
    """Check `record` against the Touchpoint contract; return it, writable with touchpoint.avsc.

    Raises `DecodeError` of kind "validation" naming the first offending field. `"ids": null` and
    null values inside `ids` mean "absent" and are dropped; the input is not mutated (a shallow copy
    is returned in that case, the record itself otherwise).
    """
    if not isinstance(record, dict):
        raise _invalid(f"expected a JSON object, got {_json_kind(record)}")
    _check_required_text(record, "event_id")
    event_time = record.get("event_time")
    if event_time is None:
        raise _invalid("missing field 'event_time'")
    if not (isinstance(event_time, str) or _is_long(event_time)):
        raise _wrong_type("event_time", event_time, "long or string")
    _check_required_text(record, "type")
    for key, avro_type in TOP_LEVEL_OPTIONAL.items():
        v = record.get(key)
        if v is not None and not isinstance(v, str):
            raise _wrong_type(key, v, avro_type)

    ids = record.get("ids")
    if ids is None:
        if "ids" in record:  # "ids": null means no identifiers
            record = {k: v for k, v in record.items() if k != "ids"}
    else:
        if not isinstance(ids, dict):
            raise _invalid(f"field 'ids' has type {_type_name(ids)}, expected map of string")
        has_null = False
        for key, value in ids.items():
            if isinstance(value, str):
                continue
            if value is None:
                has_null = True
            else:
                raise _invalid(f"field 'ids.{_one_line(key, 40)}' has type {_type_name(value)}, "
                               "expected string")
        if has_null:
            record = {**record, "ids": {k: v for k, v in ids.items() if v is not None}}

    if not nested:
        return record
    context = record.get("context")
    if context is not None:
        _check_record("context", context, _CONTEXT_SPEC)
    properties = record.get("properties")
    if properties is not None:
        _check_record("properties", properties, _PROPERTIES_SPEC)
    return record


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


# --- encode --------------------------------------------------------------------------------------

def _json_default(obj: Any) -> Any:
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return base64.b64encode(obj).decode("ascii")
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def encode_json(obj: Any) -> bytes:
    """`obj` as compact JSON bytes (orjson). bytes values become base64 text; keys must be str."""
    return orjson.dumps(obj, default=_json_default)


def encode_avro(name: str, obj: Any, schema_id: int | None = None) -> bytes:
    """`obj` in the Confluent wire format with schema `name`.

    `schema_id` defaults to the local id of `name` (registry.json); pass the id a schema registry
    service assigned when writing for consumers that use one. Raises ValueError when `obj` does not
    fit the schema.
    """
    parsed = registry.schema(name)
    sid = registry.schema_id(name) if schema_id is None else schema_id
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC_BYTE, sid))
    try:
        fastavro.schemaless_writer(buf, parsed, obj)
    except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
        raise ValueError(f"cannot encode as {name}: {_one_line(str(exc))}") from exc
    return buf.getvalue()


def decode_avro(raw: bytes) -> tuple[str, Any]:
    """Confluent wire-format bytes of any local schema -> (schema name, value).

    Timestamps come back as int epoch milliseconds and bytes as bytes. Raises `DecodeError`.
    """
    sid = _read_header(raw)
    try:
        name = registry.name_for_id(sid)
    except registry.UnknownSchema:
        raise DecodeError("format", f"unknown schema id {sid}") from None
    return name, _read_avro_body(raw, name, registry.reader_schema(name))
