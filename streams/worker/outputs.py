"""Where a batch's results go: topic messages and ClickHouse rows (the worker's and replay's).

- `journey_records`: the public output records (triggers, stitched touchpoints, identity
  events...), and the same batch's ClickHouse rows as records of the sink topic, for the sink stage
  (streams/worker/sink_stage.py); the lists that also go to a public topic are not encoded twice
  in JSON. With PARCOURS_OUTPUT_FORMAT=avro (an `OutputEncoder` that writes Avro:
  streams/worker/output_schemas.py) the topic values are Confluent Avro, and the sink-topic rows
  are still JSON, encoded separately: the sink stage reads JSON.
- `table_rows`: rows per table, built by `rows_of` from the pipeline's lists: replay writes them
  directly, the sink stage builds them from the sink topic's records with the same function.
- `profile_traits` rows (`traits`) go to the sink only, like experiment exposures; audience records
  go to the `audiences` topic and, but for an erasure's (cause "forget", see `rows_of`), to the
  `audience_membership` table.
"""
from __future__ import annotations

from typing import Iterator

import orjson

from streams.config import Topics
from streams.pipeline import Emitted
from streams.worker import sink_blocks

Record = tuple[str, bytes | None, bytes]

# an Emitted list (or "dead_letters") -> its ClickHouse table, in the order tables are written
TABLE_OF = {"stitched": "touchpoints", "identity_map": "identity_map",
            "identity": "identity_events", "credits": "attribution_credit",
            "triggers": "triggers", "suppressions": "suppressions", "late": "late_events",
            "paths": "attribution_paths", "exposures": "experiment_exposures",
            "traits": "profile_traits", "audiences": "audience_membership",
            "dead_letters": "dead_letters"}
# the audience records of an erasure (cause "forget") go to the topic only: the erasure deletes the
# person's rows, and an exit row written after it would hold the erased profile id again
TOPIC_ONLY_CAUSE = "forget"


def _json(obj) -> bytes:
    return orjson.dumps(obj)


def _keyed(out: Emitted, topics: Topics, value=_json) -> Iterator[tuple[str, list]]:
    """(Emitted list, its (topic, key, value(item)) records) for every list that goes to a public
    topic (`value`: the JSON encoding; the item itself for another encoder)."""
    yield "stitched", [(topics.stitched, (tp["profile_id"] or tp["event_id"]).encode(), value(tp))
                       for tp in out.stitched]
    yield "identity", [(topics.identity, ev["survivor"].encode(), value(ev))
                       for ev in out.identity]
    yield "credits", [(topics.credit, row["conversion_id"].encode(), value(row))
                      for row in out.credits]
    yield "triggers", [(topics.trigger_topic(trig["channel"]), trig["profile_id"].encode(),
                        value(trig)) for trig in out.triggers]
    yield "suppressions", [(topics.suppressions, sup["profile_id"].encode(), value(sup))
                           for sup in out.suppressions]
    yield "late", [(topics.late, late["event_id"].encode(), value(late)) for late in out.late]
    yield "audiences", [(topics.audiences, rec["profile_id"].encode(), value(rec))
                        for rec in out.audiences]


def _item(obj):
    return obj


def journey_records(out: Emitted, topics: Topics, now_ms: int, erasures: list[Record] = (),
                    encoder=None) -> tuple[list[Record], list[Record]]:
    """A batch's public topic records, and its ClickHouse rows as sink-topic records (in JSON,
    the encoded topic values reused: a stitched touchpoint is serialised once for both; with an
    Avro `encoder`, topic values are encoded by it). `erasures` (the batch's erasure records) go
    after every row about what happened, and before the `profile_traits` rows: those are the
    profiles' state at the end of the batch, after the erasures (a profile id erased and used
    again in one batch keeps its new row)."""
    records: list[Record] = []
    blocks: dict[str, list[bytes]] = {}
    if encoder is not None and encoder.avro:
        for kind, keyed in _keyed(out, topics, _item):
            if keyed:
                records.extend((topic, key, encoder.encode(kind, topic, item))
                               for topic, key, item in keyed)
                blocks[kind] = [_json(item) for _topic, _key, item in keyed]
    else:
        for kind, keyed in _keyed(out, topics):
            if keyed:
                records.extend(keyed)
                blocks[kind] = [value for _topic, _key, value in keyed]
    if out.identity_map:
        blocks["identity_map"] = [_json(row) for row in out.identity_map]
    if out.paths:
        blocks["paths"] = [_json(path) for path in out.paths]
    if out.exposures:
        blocks["exposures"] = [_json(row) for row in out.exposures]
    if out.traits:
        blocks["traits"] = [_json(row) for row in out.traits]
    sink = [(topics.sink, None, block) for kind in TABLE_OF if kind in blocks and kind != "traits"
            for block in sink_blocks.encode(kind, blocks[kind], now_ms)]
    sink.extend(erasures)
    sink.extend((topics.sink, None, block)
                for block in sink_blocks.encode("traits", blocks.get("traits", ()), now_ms))
    return records, sink


def rows_of(kind: str, items: list[dict], now_ms: int) -> list[dict]:
    """The ClickHouse rows of one Emitted list (`kind`: a key of TABLE_OF), stamped `now_ms`."""
    if kind == "stitched":
        return [_touchpoint_row(tp, now_ms) for tp in items]
    if kind == "identity":
        return [{"at": ev["at"], "kind": ev["kind"], "survivor": ev["survivor"],
                 "absorbed": ev["absorbed"], "identifiers": ev["identifiers"],
                 "event_id": ev["event_id"] or "", "reason": ev["reason"] or ""}
                for ev in items]
    if kind in ("credits", "paths"):
        return [{**row, "computed_at": now_ms} for row in items]
    if kind == "traits":
        return [{**row, "updated_at": now_ms} for row in items]
    if kind == "audiences":
        return [{**rec, "event_id": rec["event_id"] or "", "ingested_at": now_ms}
                for rec in items if rec["cause"] != TOPIC_ONLY_CAUSE]
    if kind == "dead_letters":
        return dead_letter_rows(items)
    if kind in TABLE_OF:
        return items
    raise ValueError(f"no ClickHouse table for {kind!r} (known: {', '.join(TABLE_OF)})")


def table_rows(out: Emitted, now_ms: int) -> dict[str, list[dict]]:
    """ClickHouse rows per table for a batch (times as epoch ms; the sink converts them); a table
    with no row (the batch's audience records all of an erasure) is left out."""
    tables = {TABLE_OF[kind]: rows_of(kind, getattr(out, kind), now_ms)
              for kind in TABLE_OF if kind != "dead_letters" and getattr(out, kind)}
    return {table: rows for table, rows in tables.items() if rows}


def _touchpoint_row(tp: dict, now_ms: int) -> dict:
    props = tp.get("properties") or {}
    revenue = props.get("revenue")
    return {
        "event_id": tp["event_id"], "event_time": tp["event_time"], "profile_id": tp["profile_id"],
        "type": tp["type"], "channel": tp["channel"], "campaign": tp.get("campaign"),
        "publisher": tp.get("publisher"), "ids": tp.get("ids") or {},
        "context": tp.get("context") or {}, "properties": props,
        "revenue": float(revenue) if isinstance(revenue, (int, float)) else 0.0,
        "currency": props.get("currency") or "", "ingested_at": now_ms,
    }


def dead_letter_rows(dead: list[dict]) -> list[dict]:
    return [{
        "received_at": d["received_at"], "error": d["error"], "reason": d["reason"],
        "topic": d.get("topic") or "",
        "partition": -1 if d.get("partition") is None else d["partition"],
        "offset": -1 if d.get("offset") is None else d["offset"], "original": d["original"],
    } for d in dead]
