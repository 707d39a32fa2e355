"""Which of the N shards holds a profile.

A profile id is "p-" + 20 hex digits of a sha256: its natural shard is the first 8 digits mod N,
computed, never stored. A rename gives the profile a new id but keeps its shard, and a merge's
survivor stays where it is; the few profiles not on their natural shard are kept in the
sequencer's `shards` state (profile -> shard), so placement costs no state for most profiles.
"""
from __future__ import annotations

from collections import Counter

from streams.state import TOMBSTONE, BatchState


def natural_shard(profile_id: str, shards: int) -> int:
    return int(profile_id[2:10], 16) % shards if shards > 1 else 0


class Placement:
    __slots__ = ("state", "shards", "_pending_get", "_backing_get")

    def __init__(self, state: BatchState, shards: int):
        if shards < 1:
            raise ValueError(f"shards must be at least 1, not {shards}")
        self.state = state
        self.shards = shards
        # once per event: reads without a Python call each (values are ints, never None)
        self._pending_get, self._backing_get = state.lookups()

    def shard_of(self, profile_id: str) -> int:
        placed = self._pending_get(profile_id)
        if placed is None:
            placed = self._backing_get(profile_id)
            if placed is None:
                return int(profile_id[2:10], 16) % self.shards if self.shards > 1 else 0
        elif placed is TOMBSTONE:
            return natural_shard(profile_id, self.shards)
        return placed

    def place_survivor(self, survivor: str, absorbed: dict[str, int], renamed: bool) -> int:
        """The survivor's shard after a merge of `absorbed` (profile -> shard): its own, or for a
        renamed survivor (a new id) the shard most absorbed profiles were on (ties: the one of
        the smallest profile id). The absorbed profiles' placements are dropped."""
        if renamed:
            counts = Counter(absorbed.values())
            best = max(counts.values())
            shard = next(absorbed[p] for p in sorted(absorbed) if counts[absorbed[p]] == best)
            if shard != natural_shard(survivor, self.shards):
                self.state.set(survivor, shard)
        else:
            shard = self.shard_of(survivor)
        for profile_id in absorbed:
            if profile_id in self.state:
                self.state.delete(profile_id)
        return shard

    def forget(self, profile_id: str) -> None:
        if profile_id in self.state:
            self.state.delete(profile_id)
