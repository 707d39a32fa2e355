"""The sequencer: the one total order of `parcours.stitch`, turned into items for N shards.

It does only what needs the global view (`streams.sequencing.Sequencing`): the watermark per
source and the late decisions, the reorder buffer, identity resolution (links, merges, limits,
forget), and placement (`streams.shards.placement`). It runs no per-profile stage: each event
becomes an item for the shard that holds its profile, with its sequence number and its firing
threshold (`streams.shards.items`). A merge becomes a `merge` item on the survivor's shard and a
`handoff` item on each absorbed profile's shard (handoffs first when both are on one shard).
After each call every shard that has not seen the newest watermark gets a `tick`.

What it writes itself: identity events and identity_map rows, and the stitched and late records
of anonymous events (no profile: no shard has anything to do with them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, MutableMapping

from streams.errors import ConfigError
from streams.identity.graph import IdentityConfig
from streams.sequencing import Sequencing
from streams.shards.items import EVENT, FORGET, HANDOFF, MERGE, TICK, Item
from streams.shards.placement import Placement
from streams.state import BatchState

__all__ = ["SEQUENCER_STORES", "Sequenced", "Sequencer"]

# "clock" (watermark, positions, the sequence counter) is the last store the worker writes
SEQUENCER_STORES = ("ids", "profiles", "pending", "shards", "clock")
COUNTER_KEY = "sequencer"
_NO_LATE: dict = {}


@dataclass
class Sequenced:
    """What one call of the sequencer produces."""

    items: dict[int, list[Item]]  # shard -> its items, in sequence order
    identity: list[dict] = field(default_factory=list)
    identity_map: list[dict] = field(default_factory=list)
    stitched: list[dict] = field(default_factory=list)  # anonymous events only
    late: list[dict] = field(default_factory=list)  # anonymous events only
    merges: int = 0  # merges and renames across shards (a profile's state had to move)
    renames: int = 0  # merges whose survivor is a new id (an anchor changed)

    def extend(self, other: "Sequenced") -> None:
        for shard, items in other.items.items():
            self.items[shard].extend(items)
        self.identity.extend(other.identity)
        self.identity_map.extend(other.identity_map)
        self.stitched.extend(other.stitched)
        self.late.extend(other.late)
        self.merges += other.merges
        self.renames += other.renames


class Sequencer(Sequencing):
    def __init__(self, stores: dict[str, MutableMapping] | None = None, *, shards: int,
                 lateness_ms: int, identity_config: IdentityConfig | None = None,
                 sources: int = 0, clock: Callable[[], float] = time.time):
        stores = stores if stores is not None else {}
        states = {name: BatchState(stores.setdefault(name, {})) for name in SEQUENCER_STORES}
        super().__init__(states, identity_config=identity_config, lateness_ms=lateness_ms,
                         sources=sources, clock=clock)
        self.placement = Placement(states["shards"], shards)
        self.shards = shards
        self._late_record = _NO_LATE
        self._passed_n: int | None = None  # the sequence number at the last firing point
        self._sent_w: dict[int, int] = {}  # the last threshold each shard was sent (in memory)
        self._n: int | None = None  # the last sequence number given (None: read it first)

    # -- the sequence counter --------------------------------------------------------------------
    def _counter(self) -> int:
        if self._n is None:
            rec = self.states["clock"].get(COUNTER_KEY) or {"n": 0, "shards": self.shards}
            if rec["shards"] != self.shards:
                raise ConfigError(
                    f"the journey state was built for {rec['shards']} shards, not "
                    f"{self.shards}: keep PARCOURS_JOURNEY_PARTITIONS at {rec['shards']} (the "
                    f"partition count of the journey topic) or start from fresh state")
            self._n = rec["n"]
        return self._n

    def _next(self) -> int:
        n = self._counter() + 1
        self._n = n
        return n

    def flush(self) -> int:
        if self._n is not None:
            rec = self.states["clock"].get(COUNTER_KEY)
            if rec is None or rec["n"] != self._n:
                self.states["clock"].set(COUNTER_KEY, {"n": self._n, "shards": self.shards})
        return super().flush()

    def reset_caches(self) -> None:
        super().reset_caches()
        self._n = None
        self._sent_w = {}

    # -- Sequencing's hooks ----------------------------------------------------------------------
    def empty(self) -> Sequenced:
        """An empty result, to extend with the results of several calls."""
        return Sequenced({shard: [] for shard in range(self.shards)})

    def _new_out(self) -> Sequenced:
        self._counter()  # checks the shard count before anything is sent
        return self.empty()

    def _late(self, tp: dict, record: dict, out: Sequenced) -> None:
        self._late_record = record

    def _passed(self, threshold: int, out: Sequenced) -> None:
        """A firing point with no event after it: noted, `_done` ticks the shards that have
        seen no item since (a timer set behind the watermark fires there in the sequential
        run: each shard needs the same last firing point)."""
        self._passed_n = self._n  # the items numbered above it came after this point

    def _done(self, out: Sequenced, changed: dict, flush: bool) -> Sequenced:
        value = self.watermark.value
        sent, passed = self._sent_w, self._passed_n
        self._passed_n = None
        for shard, items in out.items.items():
            last = items[-1] if items else None
            last_w = last["w"] if last is not None and "w" in last else sent.get(shard)
            if (last_w is None or last_w < value or (passed is not None and (
                    last is None or last.get("s", 0) <= passed))):
                items.append({"k": TICK, "w": value})
            sent[shard] = value
        return super()._done(out, changed, flush)

    def _apply(self, tp: dict, out: Sequenced, changed: dict, threshold: int) -> None:
        late, self._late_record = self._late_record, _NO_LATE
        res = self._resolve(tp, out, changed)
        profile_id = res.profile_id if res is not None else None
        if not profile_id:  # anonymous: no per-profile work anywhere
            tp["profile_id"] = ""
            out.stitched.append(tp)
            if late is not _NO_LATE:
                out.late.append(late)
            return
        for merge in res.merges:
            self._merge(merge, threshold, out)
        tp["profile_id"] = profile_id
        n = self._n + 1  # read by `_new_out`: never None here
        self._n = n
        item: Item = {"k": EVENT, "s": n, "w": threshold, "t": tp}
        if res.changed_ids or res.merges:
            item["ty"] = self._types(profile_id)
        if late is not _NO_LATE:
            item["l"] = late
        out.items[self.placement.shard_of(profile_id)].append(item)

    def _types(self, profile_id: str) -> list[str]:
        """The profile's identifier types (its record's keys are "type:value")."""
        record = self.identity.profiles.get(profile_id) or ()
        return sorted({key[:key.find(":")] for key in record})

    def _merge(self, merge, threshold: int, out: Sequenced) -> None:
        shard_of = self.placement.shard_of
        absorbed = {pid: shard_of(pid) for pid in merge.absorbed}
        shard = self.placement.place_survivor(merge.survivor, absorbed, merge.renamed)
        first = self._counter() + 1
        seq = first + len(absorbed)  # the merge's number, after its handoffs'
        for n, (pid, at) in enumerate(absorbed.items(), first):
            out.items[at].append({"k": HANDOFF, "s": n, "m": seq, "w": threshold, "p": pid,
                                  "to": merge.survivor, "d": shard})
        self._n = seq
        out.items[shard].append({"k": MERGE, "s": seq, "w": threshold, "p": merge.survivor,
                                 "a": [[pid, at] for pid, at in absorbed.items()],
                                 "ty": self._types(merge.survivor)})
        if any(at != shard for at in absorbed.values()):
            out.merges += 1
        if merge.renamed:
            out.renames += 1

    def _erase(self, profile_id: str, identifiers: list[str], request_id: str | None,
               out: Sequenced) -> None:
        shard = self.placement.shard_of(profile_id)
        self.placement.forget(profile_id)
        # at the watermark: the timers the sequential run fired before it, on other shards'
        # items, fire on this shard before the profile goes. The shard erases the person's rows
        # (after its own rows of them: `ShardOut.erased`), so it is told who they were.
        out.items[shard].append({"k": FORGET, "s": self._next(), "w": self.watermark.value,
                                 "p": profile_id, "i": identifiers, "r": request_id})
