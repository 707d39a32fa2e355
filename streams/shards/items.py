"""The records between the sequencer and the shards (JSON on `parcours.journey` and
`parcours.transfer`).

Journey items, one list per shard in sequence order. `s` is the item's sequence number: the
sequencer's counter, one per event, handoff, merge and erasure, in the stitch order (a merge's
handoffs come just before it, so every shard sees strictly increasing numbers); it is
deterministic, so a sequencer that restarts from its last consistent state sends the same items
with the same numbers again. `w` is the item's firing threshold: the
shard fires its timers due before `w` first (`streams.sequencing`).

- event   {"k": "e", "s", "w", "t": stitched touchpoint, "ty"?: identifier types of the profile
           (when they changed), "l"?: its late record}
- merge   {"k": "m", "s", "w", "p": survivor, "a": [[absorbed, its shard], ...], "ty": types}
           on the survivor's shard: apply once every absorbed profile's transfer is here
- handoff {"k": "h", "s", "m": the merge's number, "w", "p": absorbed, "to": survivor,
           "d": the survivor's shard}
           on the absorbed profile's shard: export its state to the survivor's
- forget  {"k": "f", "s", "w", "p": profile, "i": its identifiers, "r": the request id}: erase
           it (and, in the worker, the person's ClickHouse rows after the shard's own)
- tick    {"k": "t", "w"}: the watermark moved (no sequence number)

A transfer is {"s": the merge's number, "p": survivor, "a": absorbed, "x": {stage: exported
state}, "ty": identifier types}.
"""
from __future__ import annotations

from typing import Any, TypedDict

EVENT, MERGE, HANDOFF, FORGET, TICK = "e", "m", "h", "f", "t"


class Item(TypedDict, total=False):
    k: str
    s: int
    w: int
    t: dict
    ty: list[str]
    l: dict  # noqa: E741 - the wire name
    p: str
    a: list[list]
    to: str
    d: int
    m: int
    i: list[str]
    r: str | None


class Transfer(TypedDict):
    s: int
    p: str
    a: str
    x: dict[str, Any]
    ty: list[str] | None


def transfer_key(survivor: str, seq: int, absorbed: str) -> str:
    """Where a shard keeps a transfer until its merge applies it."""
    return f"{survivor}|{seq}|{absorbed}"
