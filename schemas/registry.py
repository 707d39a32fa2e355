"""The Avro contracts of parcours, parsed once, and the local schema-id table of the wire format.

Each contract is `schemas/<name>.avsc`, shipped as package data. The Confluent wire format
(byte 0x00, a 4-byte big-endian schema id, then Avro binary) needs a number per schema; without a
schema registry service those numbers come from `schemas/registry.json`:

    1 touchpoint   2 stitched_touchpoint   3 dead_letter   4 identity_event
    5 attribution_credit   6 trigger   7 suppression   8 late_event   9 audience_record

An id is part of the wire contract: never renumber or reuse one, give a new schema the next free id.

Everything is read and parsed at import, so a broken .avsc fails the first import instead of the
first record, and the hot path only does dictionary look-ups.

`check_compatible(old, new)` is the guard for evolving a contract: the `avro` package checks the
reader/writer resolution rules, then fastavro writes sample records covering every union branch
with the old schema and reads them back with the new one.
"""
from __future__ import annotations

import copy
import io
import json
from decimal import Decimal
from importlib.resources import files
from typing import Any, Mapping

import avro.errors
import avro.schema
import fastavro
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from streams.errors import ConfigError, ParcoursError

__all__ = [
    "IncompatibleSchema",
    "UnknownSchema",
    "check_compatible",
    "resolution_problem",
    "name_for_id",
    "names",
    "plain_schema",
    "reader_schema",
    "sample_records",
    "schema",
    "schema_id",
    "schema_json",
]

_PACKAGE = files(__package__ or "schemas")


class UnknownSchema(ParcoursError, LookupError):
    """A schema name or wire-format id that registry.json does not list."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else "unknown schema"


class IncompatibleSchema(ConfigError):
    """Data written with the old schema cannot be read with the new one; the message says why."""


def _read_json(filename: str) -> Any:
    return json.loads(_PACKAGE.joinpath(filename).read_text(encoding="utf-8"))


def _without_logical_types(node: Any) -> Any:
    """The same schema with `logicalType` annotations removed (the binary encoding is identical)."""
    if isinstance(node, dict):
        return {k: _without_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


def _load() -> tuple[dict[str, int], dict[int, str], dict[str, dict], dict[str, Any],
                     dict[str, Any]]:
    ids: dict[str, int] = dict(_read_json("registry.json")["schemas"])
    by_id: dict[int, str] = {}
    for name, sid in ids.items():
        if not isinstance(sid, int) or isinstance(sid, bool) or not 0 < sid < 2**31:
            raise ValueError(f"registry.json: schema id of {name!r} must be a positive 32-bit int, "
                             f"got {sid!r}")
        if sid in by_id:
            raise ValueError(f"registry.json: id {sid} is given to both {by_id[sid]!r} "
                             f"and {name!r}")
        by_id[sid] = name
    raw: dict[str, dict] = {}
    parsed: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for name in ids:
        raw[name] = _read_json(f"{name}.avsc")
        parsed[name] = fastavro.parse_schema(copy.deepcopy(raw[name]))
        plain[name] = fastavro.parse_schema(_without_logical_types(raw[name]))
    return ids, by_id, raw, parsed, plain


_IDS, _NAMES_BY_ID, _RAW, _PARSED, _PLAIN = _load()


def names() -> tuple[str, ...]:
    """Schema names in id order."""
    return tuple(sorted(_IDS, key=_IDS.__getitem__))


def schema(name: str) -> Any:
    """The parsed (fastavro) schema of `name`, logical types included. Parsed once; do not
    mutate."""
    try:
        return _PARSED[name]
    except KeyError:
        raise UnknownSchema(f"unknown schema {name!r} (known: {', '.join(names())})") from None


def reader_schema(name: str) -> Any:
    """The parsed schema of `name` without logical types.

    Same binary encoding as `schema(name)`, but timestamps read back as int epoch milliseconds
    instead of datetime, which is the plain-data shape the rest of parcours passes around.
    """
    try:
        return _PLAIN[name]
    except KeyError:
        raise UnknownSchema(f"unknown schema {name!r} (known: {', '.join(names())})") from None


def plain_schema(schema_doc: str | Mapping) -> Any:
    """Any .avsc document parsed by fastavro without its logical types, as `reader_schema` is: a
    schema registry's writer schema, read into the contracts' plain-data shape."""
    return fastavro.parse_schema(_without_logical_types(_as_schema_json(schema_doc)))


def schema_json(name: str) -> dict:
    """A fresh copy of the .avsc document of `name`, as JSON data."""
    schema(name)  # readable error for an unknown name
    return copy.deepcopy(_RAW[name])


def schema_id(name: str) -> int:
    """The wire-format id of `name`."""
    try:
        return _IDS[name]
    except KeyError:
        raise UnknownSchema(f"unknown schema {name!r} (known: {', '.join(names())})") from None


def name_for_id(sid: int) -> str:
    """The schema name a wire-format id stands for."""
    try:
        return _NAMES_BY_ID[sid]
    except KeyError:
        raise UnknownSchema(f"unknown schema id {sid}") from None


# --- compatibility -------------------------------------------------------------------------------

_PROBLEMS = {  # avro.compatibility.SchemaIncompatibilityType values, in words
    "name_mismatch": "record name changed",
    "fixed_size_mismatch": "fixed size changed",
    "missing_enum_symbols": "enum symbols removed",
    "reader_field_missing_default_value": "new field has no default",
    "type_mismatch": "type changed incompatibly",
    "missing_union_branch": "union branch removed",
}
_PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
_MAX_DEPTH = 16  # recursive types: below this depth prefer the null branch and empty collections


def _as_schema_json(s: str | Mapping | list) -> Any:
    if isinstance(s, (str, bytes)):
        return json.loads(s)
    return copy.deepcopy(s)


def _union_width(node: Any) -> int:
    """The widest union in a schema document (how many samples cover every branch)."""
    if isinstance(node, list):
        return max([len(node), *(_union_width(b) for b in node)])
    if isinstance(node, dict):
        return max([1, *(_union_width(v) for v in node.values() if isinstance(v, (dict, list)))],
                   default=1)
    return 1


def _fullname(node: dict, namespace: str) -> tuple[str, str]:
    name = node["name"]
    if "." in name:
        return name, name.rsplit(".", 1)[0]
    ns = node.get("namespace", namespace) or ""
    return (f"{ns}.{name}" if ns else name), ns


def _sample(node: Any, variant: int, namespace: str, named: dict[str, Any], depth: int) -> Any:
    """A value of schema `node`; `variant` picks the union branch (modulo width) and collection
    size."""
    if isinstance(node, str):
        if node in _PRIMITIVES:
            return _primitive_sample(node, variant)
        key = node if node in named else f"{namespace}.{node}"
        return _sample(named[key], variant, namespace, named, depth + 1)
    if isinstance(node, list):
        branches = node
        if depth > _MAX_DEPTH and "null" in branches:
            return None
        return _sample(branches[variant % len(branches)], variant, namespace, named, depth + 1)
    kind = node["type"]
    logical = node.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return Decimal(variant)
    if logical == "uuid" and kind == "string":
        return f"00000000-0000-4000-8000-{variant:012d}"
    if kind in _PRIMITIVES:
        return _primitive_sample(kind, variant)
    if kind in ("record", "error", "enum", "fixed"):
        fullname, ns = _fullname(node, namespace)
        named[fullname] = node
        if kind == "enum":
            return node["symbols"][variant % len(node["symbols"])]
        if kind == "fixed":
            return bytes([variant % 256]) * node["size"]
        return {f["name"]: _sample(f["type"], variant, ns, named, depth + 1)
                for f in node["fields"]}
    if kind == "array":
        if variant == 0 or depth > _MAX_DEPTH:
            return []
        return [_sample(node["items"], variant, namespace, named, depth + 1)]
    if kind == "map":
        if variant == 0 or depth > _MAX_DEPTH:
            return {}
        return {"k": _sample(node["values"], variant, namespace, named, depth + 1)}
    return _sample(kind, variant, namespace, named, depth + 1)  # {"type": "string"} and named refs


def _primitive_sample(kind: str, variant: int) -> Any:
    return {
        "null": None,
        "boolean": bool(variant % 2),
        "int": variant,
        "long": variant,
        "float": float(variant),
        "double": float(variant),
        "bytes": b"x" * variant,
        "string": "s" * variant,
    }[kind]


def sample_records(schema_doc: str | Mapping | list) -> list[Any]:
    """Values of a schema that together use every branch of every union, and empty and one-entry
    collections. Variant 0 takes the first branch everywhere (usually null)."""
    doc = _as_schema_json(schema_doc)
    width = max(2, _union_width(doc))
    return [_sample(doc, v, "", {}, 0) for v in range(width)]


def check_compatible(old_schema_json: str | Mapping, new_schema_json: str | Mapping) -> None:
    """Raise `IncompatibleSchema` unless data written with the old schema reads with the new one.

    Both arguments are .avsc documents (JSON text or parsed). The `avro` package parses both
    (strict about names and defaults) and applies the Avro resolution rules; then every record of
    `sample_records(old)` is written by fastavro with the old schema and read with the new one as
    the reader schema, and must consume exactly the bytes written.
    """
    problem = resolution_problem(old_schema_json, new_schema_json)
    if problem is None:
        return
    stage, detail = problem
    raise IncompatibleSchema({
        "writer": f"old schema is not valid Avro: {detail}",
        "reader": f"new schema is not valid Avro: {detail}",
        "rules": f"new schema cannot read old data: {detail}",
        "sample": f"sample record {detail}",
    }[stage].replace("{new} read", "the new schema read").replace("{old}", "the old schema")
        .replace("{new}", "the new one"))


def resolution_problem(writer_json: str | Mapping, reader_json: str | Mapping
                       ) -> tuple[str, str] | None:
    """Why data written with `writer_json` cannot be read with `reader_json`, or None when it can.

    The checks of `check_compatible`, without its wording (a schema registry's writer schema is
    not an "old" one): (stage, detail), stage one of "writer" or "reader" (not valid Avro),
    "rules" (the Avro resolution rules refuse it: which rule, and where) or "sample" (a sample
    record does not read back; the detail starts with its number and says `{old}` and `{new}`
    for the two schemas). Avro compares record names unqualified: a writer in another namespace
    reads, one with another record name does not.
    """
    writer_doc = _as_schema_json(writer_json)
    reader_doc = _as_schema_json(reader_json)
    parsed = []
    for stage, doc in (("writer", writer_doc), ("reader", reader_doc)):
        try:
            parsed.append(avro.schema.parse(json.dumps(doc)))
        except (avro.errors.AvroException, ValueError) as exc:
            return stage, str(exc)
    writer, reader = parsed

    result = ReaderWriterCompatibilityChecker().get_compatibility(reader, writer)
    if result.compatibility is not SchemaCompatibilityType.compatible:
        kinds = ", ".join(dict.fromkeys(_PROBLEMS.get(i.value, i.value)
                                        for i in result.incompatibilities))
        where = ", ".join(sorted(loc for loc in result.locations if loc != "/")) or "/"
        why = "; ".join(sorted(result.messages))
        return "rules", f"{kinds} ({why}) at {where}"

    writer_parsed = fastavro.parse_schema(_without_logical_types(writer_doc))
    reader_parsed = fastavro.parse_schema(_without_logical_types(reader_doc))
    for i, record in enumerate(sample_records(_without_logical_types(writer_doc))):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, writer_parsed, record)
        written = buf.tell()
        buf.seek(0)
        try:
            fastavro.schemaless_reader(buf, writer_parsed, reader_parsed)
        except Exception as exc:  # fastavro raises several types on resolution failures
            return "sample", (f"{i} written with {{old}} does not read with {{new}}: "
                              f"{type(exc).__name__}: {exc}")
        if buf.tell() != written:
            return "sample", f"{i}: {{new}} read {buf.tell()} of the {written} bytes written"
    return None
