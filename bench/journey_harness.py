"""The worker's journey without Faust, for the benches: a `Sequencer` and its `ShardCore`s over
the journals of the worker's two tables (streams/worker/tables.py, journal.py), the table
partitions stood in for by plain namespaces, driven batch by batch as the shells drive them.
"""
from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import orjson

from streams.config import Settings
from streams.moments.stage import References
from streams.shards import SHARD_STORES, Sequencer, ShardCore
from streams.shards.sequencer import SEQUENCER_STORES
from streams.worker.journal import Journal
from streams.worker.shell import chunk_json_lists
from streams.worker.tables import ROCKSDB_OPTIONS, TABLE_NAMES

__all__ = ["SHARDS", "Journey", "State", "cpu", "decode_work", "encode_items", "send_transfers"]

SHARDS = Settings.__dataclass_fields__["journey_partitions"].default  # the worker's default
CACHE_KEYS = Settings.__dataclass_fields__["store_cache_keys"].default
APP_ID = "parcours"
# every figure is the CPU time of the bench's thread: the machine's other processes do not count,
# nor the threads RocksDB and chDB work in beside the GIL
cpu = time.thread_time


def _changelog_topic(name: str) -> SimpleNamespace:
    topic = f"{APP_ID}-{TABLE_NAMES[name]}-changelog"
    return SimpleNamespace(get_topic_name=lambda: topic)


class State:
    """The worker's two tables as the cores see them: the sequencer's journal (`sequencer-state`,
    partition 0) and one journal per shard (`shard-state`, partition i), on `kind` views. Memory:
    one dict per table, as Faust's memory store keeps it. RocksDB: one database per table
    partition, opened by Faust's `RocksDBOptions` with the worker's options under `root`."""

    def __init__(self, kind: str, shards: int = SHARDS, root: Path | None = None):
        self.kind = kind
        self.dbs: list = []
        seq_table = self._table("sequencer", 1, root)
        shard_table = self._table("shards", shards, root)
        self.sequencer = Journal(seq_table, 0, SEQUENCER_STORES, kind, CACHE_KEYS)
        self.shards = [Journal(shard_table, i, SHARD_STORES, kind, CACHE_KEYS)
                       for i in range(shards)]
        self.offsets = [0] * (shards + 1)  # the changelog offsets "acknowledged" so far

    def _table(self, name: str, partitions: int, root: Path | None) -> SimpleNamespace:
        if self.kind == "memory":
            data = SimpleNamespace(data={}, _key_partition={})
        else:
            from faust.stores.rocksdb import RocksDBOptions

            options = {k: v for k, v in ROCKSDB_OPTIONS.items() if k != "driver"}
            dbs = {p: RocksDBOptions(use_rocksdict=True, **options).open(
                root / f"{TABLE_NAMES[name]}-{p}.db") for p in range(partitions)}
            self.dbs.extend(dbs.values())
            data = SimpleNamespace(_dbs=dbs)
        return SimpleNamespace(data=data, changelog_topic=_changelog_topic(name))

    def journals(self) -> list[Journal]:
        return [self.sequencer, *self.shards]

    def acked(self, records: list[list[tuple]]) -> None:
        """The broker acknowledged each journal's drained records (in `journals()` order): RocksDB
        writes them with the offset of the last one, as `Tables.acked` does."""
        for i, (journal, drained) in enumerate(zip(self.journals(), records)):
            if drained:
                self.offsets[i] += len(drained)
                journal.acked(self.offsets[i] - 1)

    def close(self) -> None:
        for db in self.dbs:
            db.close()


class Journey:
    """A sequencer and its shard cores over one `State`, driven batch by batch as the shells
    drive them; transfers a batch's shards send reach their shard with the next batch."""

    def __init__(self, state: State, rules, references: References):
        self.state = state
        self.sequencer = Sequencer(state.sequencer.views, shards=len(state.shards),
                                   lateness_ms=rules.lateness_ms)
        self.cores = [ShardCore(i, journal.views, rules=rules, references=references)
                      for i, journal in enumerate(state.shards)]
        self.inbox: dict[int, list] = {}  # shard -> transfers sent to it, for its next batch
        self.stitch_offset = -1

    def sequence(self, items: list[dict], messages: int):
        """`SequencerShell._run` for a batch of touchpoints, and the stitch position it keeps."""
        out = self.sequencer.process(items, flush=False)
        self.stitch_offset += messages
        self.sequencer.watermark.set_position(self.stitch_offset)
        return out

    def shard(self, work: dict[int, list], seconds: list[float] | None = None) -> dict:
        """`ShardShell.run`'s cores: each shard with work takes its transfers, then its items;
        `seconds[i]` gets shard i's CPU time."""
        outs = {}
        for shard in sorted(work.keys() | self.inbox.keys()):
            started = cpu()
            core = self.cores[shard]
            out = core.transfer(self.inbox.pop(shard, []))
            outs[shard] = core.process(work.get(shard, []), out)
            if seconds is not None:
                seconds[shard] += cpu() - started
        return outs

    def changelog(self, shards) -> list[list[tuple]]:
        """Flush the sequencer and the shards that ran, and drain their framed records."""
        self.sequencer.flush()
        drained = [self.state.sequencer.drain()]
        for i, core in enumerate(self.cores):
            if i in shards:
                core.flush()
                drained.append(self.state.shards[i].drain())
            else:
                drained.append([])
        return drained


def decode_work(journey: dict[int, list[bytes]]) -> dict[int, list]:
    return {shard: [item for chunk in chunks for item in orjson.loads(chunk)]
            for shard, chunks in journey.items()}


def encode_items(sequenced) -> dict[int, list[bytes]]:
    return {shard: chunk_json_lists(items) for shard, items in sequenced.items.items() if items}


def send_transfers(outs: dict, journey: Journey) -> list[bytes]:
    """The shards' transfers through JSON to their shard's inbox (the shard shell's chunks);
    returns the encoded chunks."""
    by_shard: dict[int, list] = {}
    for out in outs.values():
        for shard, transfer in out.transfers:
            by_shard.setdefault(shard, []).append(transfer)
    chunks = []
    for shard, transfers in by_shard.items():
        encoded = chunk_json_lists(transfers)
        chunks.extend(encoded)
        journey.inbox.setdefault(shard, []).extend(t for c in encoded for t in orjson.loads(c))
    return chunks
