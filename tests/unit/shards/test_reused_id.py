"""A profile id absorbed by a merge still parked on its shard comes back before that merge
applies: its new items wait for the merge, so the merge does not fold the new profile away.

Shard 0 holds S and X; A lives on shard 1. S absorbs A (parked: A's transfer is not here yet),
then X (its handoff runs at once, same shard); then X's identifier is a profile of its own again
(after X was absorbed the id is free: a later event re-creates it). When A's transfer arrives,
S's merges apply in order, and only then the new X's event: X ends with its new state alone, and
S holds what the old X and A brought."""
from __future__ import annotations

import orjson

from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.shards import ShardCore

RULES = load_default()
T0 = 1_794_000_000_000


def _event(event_id: str, minute: int, tz: str, profile_id: str) -> dict:
    raw = orjson.dumps({"event_id": event_id, "event_time": T0 + minute * 60_000,
                        "type": "page_view", "channel": "web", "ids": {"cookie": event_id},
                        "context": {"tz": tz}})
    (tp,), dead = ingest_batch([(raw, "touchpoints", 0, minute)])
    assert not dead, dead
    tp = {k: v for k, v in tp.items() if not k.startswith("_")}
    return {**tp, "profile_id": profile_id}


def _item(seq: int, minute: int, **fields) -> dict:
    return {"s": seq, "w": T0 + minute * 60_000, **fields}


def test_a_reused_id_waits_for_the_merge_that_absorbs_its_old_self():
    s0, s1 = ShardCore(0, {}, rules=RULES), ShardCore(1, {}, rules=RULES)
    # shard 1: A's event, then its handoff to S on shard 0 (merge 5)
    out1 = s1.process([
        _item(1, 0, k="e", t=_event("a1", 0, "Asia/Tokyo", "p-A"), ty=["cookie"]),
        _item(4, 3, k="h", m=5, p="p-A", to="p-S", d=0)])
    ((dest, transfer_a),) = out1.transfers
    assert dest == 0
    out = s0.process([
        _item(2, 1, k="e", t=_event("x1", 1, "Europe/Paris", "p-X"), ty=["cookie"]),
        _item(3, 2, k="e", t=_event("s1", 2, "America/Martinique", "p-S"), ty=["cookie"]),
        _item(5, 3, k="m", p="p-S", a=[["p-A", 1]], ty=["cookie"]),  # parks: A not here yet
        _item(6, 4, k="h", m=7, p="p-X", to="p-S", d=0),
        _item(7, 4, k="m", p="p-S", a=[["p-X", 0]], ty=["cookie"]),  # queued behind merge 5
        _item(8, 5, k="e", t=_event("x2", 5, "Indian/Reunion", "p-X"), ty=["cookie"]),
    ])
    assert out.parked == ["p-S", "p-X"]  # the new X waits for merge 7
    assert s0.states["prefs"].get("p-X") is None
    out = s0.transfer([orjson.loads(orjson.dumps(transfer_a))])
    assert [tp["event_id"] for tp in out.stitched] == ["x2"]  # after S's merges
    assert s0.waiting() == 0
    assert s0.states["prefs"].get("p-X") == {"z": [T0 + 5 * 60_000, "Indian/Reunion"]}
    # S holds the newest zone of S, A and the old X (A's Tokyo at minute 0 is the oldest)
    assert s0.states["prefs"].get("p-S")["z"] == [T0 + 2 * 60_000, "America/Martinique"]
