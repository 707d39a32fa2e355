"""Where a batch's results go: topic messages and ClickHouse rows (the worker's and replay's)."""
from __future__ import annotations

from typing import Iterator

import orjson

from streams.config import Topics
from streams.pipeline import Emitted


def _json(obj) -> bytes:
    return orjson.dumps(obj)


def topic_messages(out: Emitted, topics: Topics) -> Iterator[tuple[str, bytes | None, bytes]]:
    """(topic, key, value) for every output record of a batch, in a stable order."""
    for tp in out.stitched:
        yield topics.stitched, (tp["profile_id"] or tp["event_id"]).encode(), _json(tp)
    for ev in out.identity:
        yield topics.identity, ev["survivor"].encode(), _json(ev)
    for row in out.credits:
        yield topics.credit, row["conversion_id"].encode(), _json(row)
    for trig in out.triggers:
        yield topics.trigger_topic(trig["channel"]), trig["profile_id"].encode(), _json(trig)
    for sup in out.suppressions:
        yield topics.suppressions, sup["profile_id"].encode(), _json(sup)
    for late in out.late:
        yield topics.late, late["event_id"].encode(), _json(late)


def table_rows(out: Emitted, now_ms: int) -> dict[str, list[dict]]:
    """ClickHouse rows per table for a batch (times as epoch ms; the sink converts them)."""
    rows: dict[str, list[dict]] = {}
    if out.stitched:
        rows["touchpoints"] = [_touchpoint_row(tp, now_ms) for tp in out.stitched]
    if out.identity_map:
        rows["identity_map"] = out.identity_map
    if out.identity:
        rows["identity_events"] = [{
            "at": ev["at"], "kind": ev["kind"], "survivor": ev["survivor"],
            "absorbed": ev["absorbed"], "identifiers": ev["identifiers"],
            "event_id": ev["event_id"] or "", "reason": ev["reason"] or "",
        } for ev in out.identity]
    if out.credits:
        rows["attribution_credit"] = [{**row, "computed_at": now_ms} for row in out.credits]
    if out.triggers:
        rows["triggers"] = out.triggers
    if out.suppressions:
        rows["suppressions"] = out.suppressions
    if out.late:
        rows["late_events"] = out.late
    if out.paths:
        rows["attribution_paths"] = [{**path, "computed_at": now_ms} for path in out.paths]
    return rows


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
