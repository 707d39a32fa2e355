"""Writer schemas of a registry, resolved into the touchpoint contract once per schema id (pure).

A producer's writer schema need not be parcours' `schemas/touchpoint.avsc`: Avro's resolution
rules read its records into the contract (fields matched by name in any order, a field the
contract does not know skipped, one it has but the writer lacks given its default, int promoted
to long or double...). Whether a writer resolves is decided here, once per id, by
`schemas.registry.resolution_problem` (the `avro` package's ReaderWriterCompatibilityChecker, then
sample records written with the writer and read back by fastavro), so an incompatible writer is
known once, not found out record by record.

Name rules (what both `avro` and fastavro apply): named types match by their unqualified name, so
a writer `com.acme.events.Touchpoint` reads into `parcours.Touchpoint`, with its nested
`Context` and `Properties` records in any namespace; a writer record with another name
(`com.acme.PageView`) is refused ("record name changed"), as the Avro specification says.

`resolve(schema_id, answer)` turns the registry's answer to GET /schemas/ids/{id} into a `Writer`:
its parsed schema, or `refusal`, the one-line reason (error "format") every record written with it
gets as a dead letter. `WriterCache` keeps them: a resolved or refused id for good (an id's
schema never changes), an id the registry does not know for `unknown_ttl_s` (it may be registered
since), and `writers` is the plain mapping `schemas.codec.decode(raw, writers=...)` reads.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping, NamedTuple

from schemas import registry

__all__ = ["Writer", "WriterCache", "framed_ids", "resolve", "unknown"]

_CONTRACT = "touchpoint"
_CONTRACT_DOC = registry.schema_json(_CONTRACT)


class Writer(NamedTuple):
    """A registry's writer schema as decode uses it: `schema` (parsed by fastavro, logical types
    removed) to read with, or `refusal`, why its records are dead letters."""

    name: str  # the writer's full record name (or the schema id), for messages
    schema: Any | None
    refusal: str | None = None


def _refused(name: str, reason: str) -> Writer:
    return Writer(name, None, " ".join(reason.split()))


def _short(text: str, limit: int = 240) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def resolve(schema_id: int, answer: Mapping) -> Writer:
    """The registry's answer for `schema_id` ({"schema": "<.avsc text>", "schemaType": ...,
    "references": [...]}) -> a `Writer` that reads into the touchpoint contract, or one refused
    with the reason."""
    label = f"schema id {schema_id}"
    schema_type = answer.get("schemaType") or "AVRO"
    if str(schema_type).upper() != "AVRO":
        return _refused(label, f"{label} is a {schema_type} schema; the touchpoints topic reads "
                               "Avro in the Confluent wire format, or JSON")
    if answer.get("references"):
        return _refused(label, f"{label} uses schema references, which parcours does not "
                               "resolve: register the touchpoint schema self-contained")
    text = answer.get("schema")
    try:
        doc = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        doc = None
    if doc is None:
        return _refused(label, f"{label} has a schema text that is not JSON")
    name = _full_name(doc) or label
    problem = registry.resolution_problem(doc, _CONTRACT_DOC)
    if problem is not None:
        stage, detail = problem
        if stage == "writer":
            return _refused(name, f"{label} is not valid Avro: {_short(detail)}")
        if stage == "sample":
            detail = f"sample record {detail}"
        detail = detail.replace("{old}", "the writer schema").replace("{new}", "the contract")
        return _refused(name, f"{label} ({name}) cannot be read as a touchpoint: "
                              f"{_short(detail)}")
    return Writer(name, registry.plain_schema(doc))


def unknown(schema_id: int, detail: str = "") -> Writer:
    """The `Writer` of an id the registry does not know (its records are dead letters)."""
    why = f" ({_short(detail, 120)})" if detail else ""
    return _refused(f"schema id {schema_id}",
                    f"schema id {schema_id} is not in the schema registry{why}")


def _full_name(doc: Any) -> str | None:
    if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
        return None
    name, namespace = doc["name"], doc.get("namespace")
    return name if "." in name or not namespace else f"{namespace}.{name}"


def framed_ids(values: Iterable[Any]) -> set[int]:
    """The distinct schema ids of the Confluent-framed values among `values` (byte 0x00 then a
    4-byte big-endian id); anything else (JSON, None, an unreadable batch) is skipped."""
    ids = set()
    for value in values:
        if isinstance(value, (bytes, bytearray, memoryview)) and len(value) >= 5 and value[0] == 0:
            ids.add(int.from_bytes(value[1:5], "big"))
    return ids


class WriterCache:
    """Resolved writers by schema id: kept for good, but an unknown id only for `unknown_ttl_s`.

    `writers` is the one mapping handed to decode (the same dict, updated in place); `missing`
    says which ids of a batch must be asked of the registry, expiring unknown ids on the way.
    Times are the caller's clock (seconds), so tests need no sleeping.
    """

    def __init__(self, unknown_ttl_s: float = 60.0, max_unknown: int = 10_000):
        self.unknown_ttl_s = unknown_ttl_s
        self.max_unknown = max_unknown  # hostile records with random ids cost bounded memory
        self.writers: dict[int, Writer] = {}
        self._expires: dict[int, float] = {}  # unknown ids -> when to ask again

    def missing(self, ids: Iterable[int], now: float) -> list[int]:
        """The ids among `ids` with no writer (or an unknown id's that expired), sorted."""
        out = []
        for sid in ids:
            expires = self._expires.get(sid)
            if expires is not None and now >= expires:
                del self._expires[sid]
                del self.writers[sid]
            if sid not in self.writers:
                out.append(sid)
        return sorted(out)

    def add(self, schema_id: int, writer: Writer) -> None:
        """A writer the registry returned (resolved or refused): its id's schema never changes."""
        self._expires.pop(schema_id, None)
        self.writers[schema_id] = writer

    def add_unknown(self, schema_id: int, writer: Writer, now: float) -> None:
        """An id the registry does not know, refused until `now + unknown_ttl_s`."""
        self.writers[schema_id] = writer
        self._expires.pop(schema_id, None)
        self._expires[schema_id] = now + self.unknown_ttl_s
        while len(self._expires) > self.max_unknown:  # the oldest first: asked again if seen
            oldest = next(iter(self._expires))
            del self._expires[oldest]
            del self.writers[oldest]
