"""The records of the sink topic (`parcours.sink`): a batch's ClickHouse rows, and erasures.

One record holds one kind of rows (a list of `streams.worker.outputs.TABLE_OF`) of one batch:

    {"kind": "stitched", "now": 1795158900000, "items": [{...}, {...}]}

`items` are the pipeline's plain dicts, encoded once: for the lists that also go to a public topic
they are the very bytes of those records, joined. `now` stamps the rows' write-time columns
(`ingested_at`, `computed_at`, `updated_at`), so rows built again from a re-read record are
identical (and so is their insert's deduplication token). A record stays under `MAX_BLOCK_BYTES`
(at least one item).

An erasure is one record, after the rows of its batch, in the same (single) partition:

    {"kind": "erase", "request_id": "forget-...", "survivor": "p-...", "identifiers": [...]}
"""
from __future__ import annotations

import orjson

MAX_BLOCK_BYTES = 512 * 1024  # under the producer's batch size: each record is sent in order
ERASE = "erase"


def encode(kind: str, values: list[bytes], now_ms: int,
           max_bytes: int = MAX_BLOCK_BYTES) -> list[bytes]:
    """The sink records of one list of encoded items (JSON values), split by size."""
    head = b'{"kind":"%s","now":%d,"items":[' % (kind.encode(), now_ms)
    blocks, current, size = [], [], len(head) + 2
    for value in values:
        if current and size + len(value) + 1 > max_bytes:
            blocks.append(head + b",".join(current) + b"]}")
            current, size = [], len(head) + 2
        current.append(value)
        size += len(value) + 1
    if current:
        blocks.append(head + b",".join(current) + b"]}")
    return blocks


def erase(request_id: str | None, survivor: str, identifiers: list[str]) -> bytes:
    """The sink record asking the sink stage to delete a forgotten profile's rows."""
    return orjson.dumps({"kind": ERASE, "request_id": request_id, "survivor": survivor,
                         "identifiers": identifiers})


def decode(value: bytes) -> dict:
    """A sink record; ValueError when it is not one."""
    try:
        block = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if not isinstance(block, dict) or not isinstance(block.get("kind"), str):
        raise ValueError("not a sink record (no kind)")
    if block["kind"] != ERASE and not (isinstance(block.get("items"), list)
                                       and isinstance(block.get("now"), int)):
        raise ValueError(f"sink record of kind {block['kind']!r} without items or now")
    return block
