"""One shard: the per-profile stages (attribution, moments, the gate) for the profiles it holds.

A `ShardCore` reads its items from the sequencer (`process`, in sequence order) and the
transfers other shards send it (`transfer`, in any order relative to the items).

- **Timers.** Before an item with a threshold `w` the shard fires its timers due before `w`, one
  at a time in (deadline, key) order (`streams.sequencing`): a profile's timers fire between the
  same two of its events as in the sequential run, because every one of its items carries the
  threshold the sequential run had there.
- **Hand-offs.** A `handoff` exports the absorbed profile's whole state (every stage's `export`,
  its timers included, and its identifier types) to the survivor's shard. A `merge` applies once
  every transfer it names is here: each stage `adopt`s the absorbed state under the absorbed id,
  then `on_merge` folds it into the survivor exactly as the sequential run does.
- **Parking.** A merge whose transfers have not all arrived parks the survivor: its later items
  (events, merges, a handoff, a forget) queue in the `parked` state and its timers are held
  back; other profiles go on. When the last transfer arrives, the queue is replayed in order,
  each item at its own threshold, then the timers due at the shard's current threshold fire.
- **A reused id.** A profile id absorbed by a merge that is still parked here can come back
  before that merge applies (a later event makes its identifier a profile of its own again).
  Its items then wait in a queue of their own until the merge that absorbs the old profile has
  applied (`_absorbed_by`): in the sequential run they come after it, and the merge's `adopt`
  must not meet the new profile's state under the same key.
- **No deadlock.** A survivor parked at merge `s` waits only for the handoffs of merge `s`,
  numbered just below `s`. A handoff of profile X is held up only if X itself is parked, at a
  merge numbered below the handoff (X's items reach its shard in sequence order, and nothing
  follows a handoff). So every wait points to a smaller number, and the smallest waiting merge
  waits on handoffs that nothing holds up: they run as soon as their shard reads them, their
  transfers arrive, and it applies. A reused id's queue waits for a merge numbered below its
  items. By induction every parked profile resumes.
- **Idempotence.** Items reach a shard in sequence order, so the shard keeps the highest number it
  has taken (`h`, with the threshold `w`, in its `clock` state) and skips any item at or below
  it: the items a restarted sequencer sends again. A transfer is taken once: it is skipped when
  its key is already kept, or when its merge has been read (`s <= h`) and is not waiting for it.
  Outputs keep their deterministic ids, so a re-run batch sends the same records.

State, all under profile ids or per shard (`SHARD_STORES`): the stages' `paths`, `moments`,
`prefs`, `timers`; `kinds` (a profile's identifier types: what the rules' `identified` condition
reads, so no identifier value reaches a shard); `parked` (profile -> its queued items); `transfers`
(arrived, not yet applied); `clock`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, MutableMapping

import orjson

from streams.attribution.config import AttributionConfig
from streams.attribution.stage import AttributionStage
from streams.eventtime.timers import Timers
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.moments.stage import MomentsStage, References
from streams.pipeline import ATTRIBUTION_TIMERS, Emitted, Stage, traits_stage
from streams.shards.items import EVENT, FORGET, HANDOFF, MERGE, TICK, Item, Transfer, transfer_key
from streams.state import BatchState
from streams.traits.stage import TRAITS_TIMERS

__all__ = ["SHARD_STORES", "ShardCore", "ShardOut"]

SHARD_STORES = ("paths", "traits", "moments", "prefs", "timers", "kinds", "parked", "transfers",
                "clock")
CLOCK_KEY = "shard"  # + the shard's number: one key per shard, whatever the store
_NEVER = -(2 ** 62)


@dataclass
class ShardOut(Emitted):
    """A shard's outputs (`Emitted`), plus what it sends other shards and what it did."""

    transfers: list[tuple[int, Transfer]] = field(default_factory=list)  # (shard, transfer)
    parked: list[str] = field(default_factory=list)  # profiles that started waiting
    resumed: list[float] = field(default_factory=list)  # seconds each resumed profile waited
    received: list[str] = field(default_factory=list)  # transfers taken (their survivors)
    duplicates: list[int] = field(default_factory=list)  # items and transfers skipped (numbers)
    erased: list[tuple] = field(default_factory=list)  # (request id, profile, identifiers)


class ShardCore:
    def __init__(self, shard: int, stores: dict[str, MutableMapping] | None = None, *,
                 rules: RulePack | None = None, attribution_config: AttributionConfig | None = None,
                 references: References | None = None, clock: Callable[[], float] = time.time):
        stores = stores if stores is not None else {}
        self.shard = shard
        self.states = {name: BatchState(stores.setdefault(name, {})) for name in SHARD_STORES}
        rules = rules if rules is not None else load_default()
        self.timers = Timers(self.states["timers"])
        self.kinds = self.states["kinds"]
        self.parked = self.states["parked"]
        self.transfers = self.states["transfers"]
        references = references if references is not None else References.of(rules)
        attribution_config = attribution_config or AttributionConfig()
        self.attribution = AttributionStage(self.states["paths"], attribution_config, self.timers)
        self.traits = traits_stage(rules, self.states["traits"], self.timers, references,
                                   attribution_config, self._identifiers_of,
                                   lambda pid: self.moments.gate.consent(pid))
        self.moments = MomentsStage(rules, self.states["moments"], self.states["prefs"],
                                    self.timers, references, identifiers_of=self._identifiers_of,
                                    traits_of=self.traits.current)
        self.stages: list[Stage] = [self.attribution, self.traits, self.moments]
        self._clock = clock
        self._rec: dict | None = None  # {"h": highest number taken, "w": threshold}
        self._waiting: set[str] | None = None  # parked profiles (from the parked state)
        self._absorbing: dict[str, int] | None = None  # absorbed id -> its parked merge's number
        self._released: list[str] = []  # reused ids whose blocking merge has applied
        self._since: dict[str, float] = {}  # when each profile parked (this process)

    # -- per-shard record ------------------------------------------------------------------------
    def _record(self) -> dict:
        if self._rec is None:
            self._rec = dict(self.states["clock"].get(f"{CLOCK_KEY}-{self.shard}")
                             or {"h": 0, "w": _NEVER})
        return self._rec

    @property
    def high(self) -> int:
        """The highest sequence number taken."""
        return self._record()["h"]

    @property
    def threshold(self) -> int:
        return self._record()["w"]

    def _parked_ids(self) -> set[str]:
        if self._waiting is None:
            self._waiting = {key for key, _ in self.parked.items()}
        return self._waiting

    def _absorbed_by(self) -> dict[str, int]:
        """Profile ids that a merge queued in a parked survivor's items will absorb -> the
        smallest such merge's number (from the parked state; rebuilt after a queue gains or
        loses a merge)."""
        if self._absorbing is None:
            index: dict[str, int] = {}
            for survivor, queue in self.parked.items():
                for item in queue:
                    if item["k"] == MERGE:
                        for absorbed, _shard in item["a"]:
                            if absorbed != survivor:
                                index[absorbed] = min(item["s"], index.get(absorbed, item["s"]))
            self._absorbing = index
        return self._absorbing

    def _blocked(self, profile_id: str, seq: int) -> bool:
        """A merge numbered below `seq` that absorbs `profile_id` is still parked here."""
        merge = self._absorbed_by().get(profile_id)
        return merge is not None and merge < seq

    def waiting(self) -> int:
        """Profiles parked now, waiting for a hand-off."""
        return len(self._parked_ids())

    def _identifiers_of(self, profile_id: str) -> list[str]:
        return [kind + ":" for kind in self.kinds.get(profile_id) or ()]

    # -- inputs ----------------------------------------------------------------------------------
    def process(self, items: list[Item], out: ShardOut | None = None) -> ShardOut:
        """Apply journey items (one partition's, in order)."""
        out = out if out is not None else ShardOut()
        rec = self._record()
        waiting = self._parked_ids()
        for item in items:
            seq = item.get("s")
            if seq is not None:
                if seq <= rec["h"]:
                    out.duplicates.append(seq)
                    continue
                rec["h"] = seq
            w = item.get("w")
            if w is not None and w > rec["w"]:
                rec["w"] = w
            kind = item["k"]
            if kind == TICK:
                self._fire(w, out)
                continue
            profile_id = item["t"]["profile_id"] if kind == EVENT else item["p"]
            if profile_id in waiting:
                self.parked.set(profile_id, [*self.parked.get(profile_id), item])
                if kind == MERGE:
                    self._absorbing = None
                continue
            if waiting and self._blocked(profile_id, seq):  # a reused id: after that merge
                self._park(profile_id, [item], out)
                continue
            if w is not None:
                self._fire(w, out)
            if not self._run(item, out):
                self._park(profile_id, [item], out)
        self.traits.rows(out)
        return out

    def transfer(self, transfers: list[Transfer], out: ShardOut | None = None) -> ShardOut:
        """Take transfers sent by other shards' handoffs (any order, possibly twice)."""
        out = out if out is not None else ShardOut()
        for tr in transfers:
            self._take(tr, out)
        self.traits.rows(out)
        return out

    def _take(self, tr: Transfer, out: ShardOut) -> None:
        survivor, seq = tr["p"], tr["s"]
        key = transfer_key(survivor, seq, tr["a"])
        queue = self.parked.get(survivor)
        if key in self.transfers or (seq <= self.high and not any(
                item["k"] == MERGE and item["s"] == seq for item in queue or ())):
            out.duplicates.append(seq)
            return
        self.transfers.set(key, tr)
        out.received.append(survivor)
        if (queue and queue[0]["k"] == MERGE and queue[0]["s"] == seq
                and not self._blocked(survivor, seq)):  # a reused id waits for its old merge
            self._resume(survivor, queue, out)

    # -- applying one item -----------------------------------------------------------------------
    def _fire(self, w: int, out: ShardOut) -> None:
        timers = self.timers
        if timers.earliest() >= w:
            return
        waiting = self._parked_ids()
        hold = waiting.__contains__ if waiting else None
        for key, value in timers.due(w, hold):
            if value["k"] in ATTRIBUTION_TIMERS:
                self.attribution.on_timer(value, out)
            elif value["k"] in TRAITS_TIMERS:
                self.traits.on_timer(key, value, out)
            else:
                self.moments.on_timer(key, value, out)

    def _run(self, item: Item, out: ShardOut) -> bool:
        """Apply one item of a profile that is not waiting; False: a merge that must wait."""
        kind = item["k"]
        if kind == EVENT:
            tp = item["t"]
            if "ty" in item:
                self.kinds.set(tp["profile_id"], item["ty"])
            late = item.get("l")
            if late is not None:
                self.moments.skip(tp)
                out.late.append(late)
            out.stitched.append(tp)
            for stage in self.stages:
                stage.on_event(tp, out)
            self._fire(item["w"], out)  # a timer it set behind the watermark: now
        elif kind == MERGE:
            if not self._merge(item, out):
                return False
            self._absorbing = None
            # a reused id's items waited for this merge: they go once the survivor's queue
            # has (its later items, before their timers fire, may change what the merge brought)
            self._released.extend(pid for pid, _shard in item["a"] if pid in self._parked_ids())
        elif kind == HANDOFF:
            self._handoff(item, out)
        elif kind == FORGET:
            for stage in self.stages:
                stage.on_forget(item["p"], out)
            self._drop_kinds(item["p"])
            out.erased.append((item.get("r"), item["p"], item.get("i") or []))
        else:
            raise ValueError(f"unknown journey item kind {kind!r}")
        return True

    def _merge(self, item: Item, out: ShardOut) -> bool:
        survivor, seq = item["p"], item["s"]
        keys = [transfer_key(survivor, seq, absorbed) for absorbed, _shard in item["a"]]
        if not all(key in self.transfers for key in keys):
            return False
        absorbed = []
        for (profile_id, _shard), key in zip(item["a"], keys):
            tr = self.transfers.get(key)
            self.transfers.delete(key)
            for stage in self.stages:
                stage.adopt(profile_id, tr["x"].get(stage.name))
            absorbed.append(profile_id)
        self.kinds.set(survivor, item["ty"])  # the merged profile's types, as its stages see it
        for stage in self.stages:
            stage.on_merge(survivor, absorbed, out)
        for profile_id in absorbed:
            if profile_id != survivor:
                self._drop_kinds(profile_id)
        return True

    def _handoff(self, item: Item, out: ShardOut) -> None:
        profile_id = item["p"]
        tr: Transfer = {"s": item["m"], "p": item["to"], "a": profile_id,
                        "x": {stage.name: stage.export(profile_id) for stage in self.stages},
                        "ty": self.kinds.get(profile_id)}
        self._drop_kinds(profile_id)
        if item["d"] == self.shard:  # survivor here too: no round trip through Kafka
            self._take(orjson.loads(orjson.dumps(tr)), out)  # its own objects, as off the wire
        else:
            out.transfers.append((item["d"], tr))

    def _drop_kinds(self, profile_id: str) -> None:
        if profile_id in self.kinds:
            self.kinds.delete(profile_id)

    # -- parking ---------------------------------------------------------------------------------
    def _park(self, profile_id: str, queue: list[Item], out: ShardOut) -> None:
        self.parked.set(profile_id, queue)
        self._absorbing = None
        self._parked_ids().add(profile_id)
        self._since.setdefault(profile_id, self._clock())
        out.parked.append(profile_id)

    def _resume(self, profile_id: str, queue: list[Item], out: ShardOut) -> None:
        """Every transfer of the merge at the head of `queue` is here: replay the queue."""
        self.parked.delete(profile_id)
        self._parked_ids().discard(profile_id)
        self._absorbing = None
        self.timers.unhold(profile_id)
        queue = list(queue)
        while queue:
            item = queue[0]
            if item.get("w") is not None:
                self._fire(item["w"], out)
            if not self._run(item, out):  # the next merge waits for its own transfers
                self.parked.set(profile_id, queue)
                self._parked_ids().add(profile_id)
                self._absorbing = None
                self._run_released(out)
                return
            queue.pop(0)
        self._fire(self.threshold, out)
        since = self._since.pop(profile_id, None)
        out.resumed.append(self._clock() - since if since is not None else 0.0)
        self._run_released(out)

    def _run_released(self, out: ShardOut) -> None:
        """Replay the queues of reused ids whose blocking merge has applied."""
        while self._released:
            profile_id = self._released.pop(0)
            queue = self.parked.get(profile_id) if profile_id in self._parked_ids() else None
            if queue and not self._blocked(profile_id, queue[0]["s"]):
                self._resume(profile_id, queue, out)

    # -- batches ---------------------------------------------------------------------------------
    def flush(self) -> int:
        if self._rec is not None:
            key = f"{CLOCK_KEY}-{self.shard}"
            if self.states["clock"].get(key) != self._rec:
                self.states["clock"].set(key, dict(self._rec))
        return sum(state.flush() for state in self.states.values())

    def discard(self) -> None:
        """Forget every change since the last flush (a failed batch, or a simulated crash)."""
        for state in self.states.values():
            state.discard()
        self.reset_caches()

    def reset_caches(self) -> None:
        """Call after the backing stores were recovered."""
        self._rec = None
        self._waiting = None
        self._absorbing = None
        self._released = []
        self.timers.reset()
        self.traits.reset()
