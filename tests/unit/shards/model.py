"""A model of the sharded journey on Kafka: the sequencer and N shard cores, each with its own
input logs, committed state and committed offsets, driven by a random scheduler.

- The stitch log is shared with the reference run (`Pipeline` over the same order).
- The sequencer reads stitch items in batches and appends its items to one journey log per shard.
- Each shard reads its journey log and its transfer log (the transfers other shards' handoffs
  append), in batches of either, in any interleaving: the scheduler decides what comes when, so
  transfers arrive late, early or between a survivor's items.
- A batch's outputs go out first, then its state (the changelog: all or nothing, as the worker's
  commit marker makes it on recovery), then its input offsets. A crash lands between any two:
  after the outputs (state lost), or after the state (offsets not committed: input read again).
  A crashed component restarts from its committed state and offsets, with fresh caches.
"""
from __future__ import annotations

import orjson

from streams.pipeline import Emitted, Pipeline
from streams.shards import Sequencer, ShardCore
from tests.unit.eventtime.stream_model import Final

OUTPUTS_SENT, STATE_WRITTEN = "after outputs", "after state"


def run_items(core, log: list, out_add) -> None:
    """Stitch items through `core` (a Pipeline or a Sequencer), control items in their place."""
    run: list[dict] = []
    for item in log + [None]:
        if isinstance(item, dict):
            run.append(orjson.loads(orjson.dumps(item)))  # the core owns what it is given
            continue
        if run:
            out_add(core.process(run, flush=False))
            run = []
        if item is None:
            break
        kind, arg = item
        if kind == "idle":
            out_add(core.idle(arg, flush=False))
        elif kind == "resume":
            core.resume(arg)
        else:
            out_add(core.forget(arg, flush=False))


def reference(log: list, sources: int, **args) -> tuple[Final, Pipeline, list[Emitted]]:
    """`Pipeline` over the stitch log, in one batch."""
    pipeline = Pipeline(sources=sources, **args)
    final, outs = Final(), []

    def add(out):
        final.add(out)
        outs.append(out)

    run_items(pipeline, log, add)
    pipeline.flush()
    return final, pipeline, outs


class Sharded:
    def __init__(self, log: list, sources: int, shards: int, *, rules, **args):
        self.log, self.sources, self.n, self.rules, self.args = log, sources, shards, rules, args
        self.final = Final()
        self.outs: list[Emitted] = []
        self.seq_stores: dict = {}
        self.seq_read = 0  # committed offset in the stitch log
        self.journey: list[list] = [[] for _ in range(shards)]
        self.transfers: list[list] = [[] for _ in range(shards)]
        self.shard_stores = [{} for _ in range(shards)]
        self.read = [[0, 0] for _ in range(shards)]  # committed (journey, transfer) offsets
        self.crashes = 0
        self.sent_transfers = 0
        self.parked = 0
        self.renames = 0
        self.sequencer = self._sequencer()
        self.cores = [self._core(p) for p in range(shards)]

    def _sequencer(self) -> Sequencer:
        return Sequencer(self.seq_stores, shards=self.n, lateness_ms=self.rules.lateness_ms,
                         sources=self.sources, identity_config=self.args.get("identity_config"))

    def _core(self, p: int) -> ShardCore:
        return ShardCore(p, self.shard_stores[p], rules=self.rules,
                         attribution_config=self.args.get("attribution_config"))

    def _add(self, out) -> None:
        self.final.add(out)
        self.outs.append(out)

    # -- the sequencer ----------------------------------------------------------------------------
    def sequencer_work(self) -> int:
        return len(self.log) - self.seq_read

    def sequencer_step(self, n: int, crash: str | None = None) -> None:
        batch = self.log[self.seq_read:self.seq_read + n]
        if not batch:
            return
        seq = self.sequencer
        # items read again after a crash are skipped by position (the watermark's, as the shell)
        start = seq.watermark.position + 1
        fresh = batch[max(0, start - self.seq_read):]
        outs = []
        run_items(seq, fresh, outs.append)
        if fresh:
            seq.watermark.set_position(self.seq_read + len(batch) - 1)
        for out in outs:  # outputs first
            self.renames += out.renames
            for shard, items in out.items.items():
                self.journey[shard].extend(orjson.loads(orjson.dumps(items)))
            self._add(Emitted(identity=out.identity, identity_map=out.identity_map,
                              stitched=out.stitched, late=out.late))
        if crash == OUTPUTS_SENT:
            return self._restart_sequencer()
        seq.flush()  # the state (changelog, all or nothing)
        if crash == STATE_WRITTEN:
            return self._restart_sequencer()
        self.seq_read += len(batch)  # the offsets

    def _restart_sequencer(self) -> None:
        for state in self.sequencer.states.values():
            state.discard()
        self.crashes += 1
        self.sequencer = self._sequencer()

    # -- the shards -------------------------------------------------------------------------------
    def shard_work(self, p: int) -> tuple[int, int]:
        return (len(self.journey[p]) - self.read[p][0], len(self.transfers[p]) - self.read[p][1])

    def shard_step(self, p: int, items: int, transfers: int, crash: str | None = None) -> None:
        core = self.cores[p]
        j, t = self.read[p]
        batch = orjson.loads(orjson.dumps(self.journey[p][j:j + items]))
        received = orjson.loads(orjson.dumps(self.transfers[p][t:t + transfers]))
        out = core.transfer(received)  # the two topics of one batch, in either order
        core.process(batch, out)
        for dest, tr in out.transfers:  # outputs first
            self.transfers[dest].append(orjson.loads(orjson.dumps(tr)))
        self.sent_transfers += len(out.transfers)
        self.parked += len(out.parked)
        self._add(out)
        if crash == OUTPUTS_SENT:
            return self._restart_shard(p)
        core.flush()
        if crash == STATE_WRITTEN:
            return self._restart_shard(p)
        self.read[p] = [j + len(batch), t + len(received)]

    def _restart_shard(self, p: int) -> None:
        self.cores[p].discard()
        self.crashes += 1
        self.cores[p] = self._core(p)

    def drain(self) -> None:
        """Everything left, without crashes: the stitch log, then every shard until quiet."""
        self.sequencer_step(len(self.log))
        self.sequencer.flush()
        while True:
            busy = False
            for p in range(self.n):
                items, transfers = self.shard_work(p)
                if items or transfers:
                    self.shard_step(p, items, transfers)
                    busy = True
            if not busy:
                return

    def union(self, name: str) -> dict:
        merged: dict = {}
        for stores in self.shard_stores:
            merged.update(stores.get(name, {}))
        return merged
