"""What parcours' public output topics hold: JSON (the default) or Confluent Avro, and its ids.

PARCOURS_OUTPUT_FORMAT=avro writes the public topics' records (stitched touchpoints, identity
events, attribution credit, triggers.<channel>, suppressions, late events, audiences, dead
letters) in the Confluent wire format (byte 0x00, the 4-byte schema id, Avro binary) with the
contracts of schemas/*.avsc (`SCHEMA_OF`). The ids:
- with a schema registry (PARCOURS_SCHEMA_REGISTRY_URL), the registry's: each output topic's
  schema is registered at start under its subject, TopicNameStrategy's `<topic>-value` (a registry
  gives the same id for the same schema again), or, with PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER=
  false, looked up there, a schema missing from its subject being one startup error;
- without one, the local ids of schemas/registry.json.
The internal topics, and the ClickHouse rows of the sink topic (streams/worker/sink_blocks.py),
stay JSON whatever the format: the sink stage reads JSON, so in Avro mode a record is encoded
twice, once per reader (streams/worker/outputs.py).

Registration happens before the worker starts (`output_encoder`, from `parcours worker`): a
registry that stays unavailable for `REGISTER_WAIT_S` is a startup error as well, so the worker
never writes a record with an id it is not sure of.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Iterable, Mapping

import orjson

from schemas import registry
from schemas.codec import encode_avro
from schemas.confluent import RegistryError, RegistryUnavailable, SchemaNotFound
from streams.config import Topics
from streams.errors import ParcoursError

log = logging.getLogger("parcours.schema_registry")

FORMATS = ("json", "avro")
REGISTER_WAIT_S = 60.0
# an Emitted list (or "dead_letters") -> the contract of its public topic's records
SCHEMA_OF = {"stitched": "stitched_touchpoint", "identity": "identity_event",
             "credits": "attribution_credit", "triggers": "trigger",
             "suppressions": "suppression", "late": "late_event", "audiences": "audience_record",
             "dead_letters": "dead_letter"}


class OutputSchemaError(ParcoursError):
    """An output schema could not be registered (or found) in the registry; one line."""


class OutputEncoder:
    """Encodes public topic values. `avro=False`: not used (JSON is written as before); with
    `avro`, `ids` maps a topic to its schema id (a topic it lacks: the id of another topic with
    the same schema, else the local id)."""

    def __init__(self, ids: Mapping[str, int] | None = None, *, avro: bool = False,
                 schemas: Mapping[str, str] | None = None):
        self.avro = avro
        self.ids = dict(ids or {})
        self.by_schema: dict[str, int] = {}
        for topic, sid in self.ids.items():
            if schemas and topic in schemas:
                self.by_schema.setdefault(schemas[topic], sid)

    def encode(self, kind: str, topic: str, obj: dict) -> bytes:
        """`obj`, one record of Emitted list `kind` (or a dead letter), for `topic`, in Avro."""
        name = SCHEMA_OF[kind]
        if kind == "dead_letters" and isinstance(obj.get("original"), str):
            obj = {**obj, "original": base64.b64decode(obj["original"])}  # JSON's form is base64
        elif kind == "stitched":
            obj = with_extra(obj)
        return encode_avro(name, obj, self.ids.get(topic, self.by_schema.get(name)))


def _named_fields(record_field: str) -> frozenset[str]:
    field = next(f for f in registry.schema_json("stitched_touchpoint")["fields"]
                 if f["name"] == record_field)
    return frozenset(f["name"] for f in field["type"]["fields"]) - {"extra"}


_NAMED = {part: _named_fields(part) for part in ("context", "properties")}


def with_extra(tp: dict) -> dict:
    """A stitched touchpoint for stitched_touchpoint.avsc: the keys of its context and properties
    that the schema does not name (free-form ones ingest keeps, e.g. an e-mail's `message_id`)
    go, as JSON object text, to the record's `extra` field instead of being dropped."""
    for part, named in _NAMED.items():
        values = tp.get(part)
        if values and not values.keys() <= named:
            kept = {k: v for k, v in values.items() if k in named}
            kept["extra"] = orjson.dumps({k: v for k, v in values.items()
                                          if k not in named}).decode()
            tp = {**tp, part: kept}
    return tp


def topic_schemas(topics: Topics, channels: Iterable[str]) -> dict[str, str]:
    """Every public output topic -> the name of its schema (`channels`: the trigger channels)."""
    return {topics.stitched: "stitched_touchpoint", topics.identity: "identity_event",
            topics.credit: "attribution_credit", topics.suppressions: "suppression",
            topics.late: "late_event", topics.audiences: "audience_record",
            topics.dead_letter: "dead_letter",
            **{topics.trigger_topic(ch): "trigger" for ch in sorted(channels)}}


def subject(topic: str) -> str:
    """TopicNameStrategy: the subject of a topic's record values."""
    return f"{topic}-value"


async def register_outputs(client, schemas: Mapping[str, str], *, auto_register: bool = True,
                           wait_s: float = REGISTER_WAIT_S, sleep=asyncio.sleep,
                           clock=None) -> dict[str, int]:
    """Register (or look up) each topic's schema under its subject -> {topic: schema id}.
    Waits out an unavailable registry for `wait_s`, then raises `OutputSchemaError`, as it does
    at once for a refusal or, looking up, a schema not under its subject."""
    loop = asyncio.get_running_loop()
    clock = clock or loop.time
    deadline = clock() + wait_s
    ids: dict[str, int] = {}
    for topic, name in schemas.items():
        text = json.dumps(registry.schema_json(name), separators=(",", ":"))
        delay = 0.5
        while True:
            try:
                if auto_register:
                    ids[topic] = await client.register(subject(topic), text)
                else:
                    ids[topic] = await client.lookup(subject(topic), text)
                break
            except SchemaNotFound:
                raise OutputSchemaError(
                    f"schema {name} is not registered under subject {subject(topic)!r} of the "
                    f"schema registry at {client.url} (PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER="
                    f"false): register schemas/{name}.avsc there, or let parcours do it"
                ) from None
            except RegistryUnavailable as exc:
                if clock() + delay > deadline:
                    raise OutputSchemaError(f"cannot register the output schemas: {exc} (for "
                                            f"{wait_s:g} s)") from None
                await sleep(delay)
                delay = min(delay * 2, 10.0)
            except RegistryError as exc:
                verb = "register" if auto_register else "look up"
                raise OutputSchemaError(f"cannot {verb} schema {name} under subject "
                                        f"{subject(topic)!r}: {exc}") from None
    return ids


def output_encoder(settings, channels: Iterable[str]) -> OutputEncoder:
    """The encoder `settings` ask for; with Avro and a registry, registers the output schemas
    first (call it outside an event loop, before the worker starts)."""
    if settings.output_format != "avro":
        return OutputEncoder()
    if settings.schema_registry is None:
        return OutputEncoder(avro=True)  # the local ids of schemas/registry.json
    from schemas.confluent.client import RegistryClient

    schemas = topic_schemas(settings.topics, channels)

    async def run() -> dict[str, int]:
        client = RegistryClient(settings.schema_registry)
        try:
            return await register_outputs(client, schemas,
                                          auto_register=settings.schema_registry.auto_register)
        finally:
            await client.close()

    ids = asyncio.run(run())
    log.info("output schemas in the registry at %s: %s", settings.schema_registry.url,
             ", ".join(f"{subject(t)}={sid}" for t, sid in sorted(ids.items())))
    return OutputEncoder(ids, avro=True, schemas=schemas)
