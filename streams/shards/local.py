"""The sequencer and N shard cores in one process (`parcours replay --shards N`, benchmarks).

Each call runs the sequencer, hands every shard its items, and passes the transfers the handoffs
produce until none is left; then every state is flushed. It answers what `Pipeline` answers, as
one `Emitted`, so the two can be compared output for output.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, MutableMapping

import orjson

from streams.attribution.config import AttributionConfig
from streams.identity.graph import IdentityConfig
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.moments.stage import References
from streams.pipeline import Emitted
from streams.shards.sequencer import Sequenced, Sequencer
from streams.shards.shard import ShardCore, ShardOut

__all__ = ["LocalShards"]


class LocalShards:
    def __init__(self, shards: int, stores: dict[str, MutableMapping] | None = None, *,
                 rules: RulePack | None = None, attribution_config: AttributionConfig | None = None,
                 identity_config: IdentityConfig | None = None,
                 references: References | None = None, sources: int = 0,
                 clock: Callable[[], float] = time.time):
        stores = stores if stores is not None else {}
        rules = rules if rules is not None else load_default()
        references = references if references is not None else References.of(rules)
        self.sequencer = Sequencer(stores.setdefault("sequencer", {}), shards=shards,
                                   lateness_ms=rules.lateness_ms, identity_config=identity_config,
                                   sources=sources, clock=clock)
        self.cores = [ShardCore(i, stores.setdefault(f"shard-{i}", {}), rules=rules,
                                attribution_config=attribution_config, references=references,
                                clock=clock)
                      for i in range(shards)]
        self.identity = self.sequencer.identity
        self.transfers = 0  # transfers passed between shards
        self.parked = 0  # profiles that waited for a transfer
        self.cross_merges = 0  # merges whose absorbed state lived on another shard

    def process(self, batch: list[dict]) -> Emitted:
        return self._run(self.sequencer.process(batch, flush=False))

    def idle(self, source: str) -> Emitted:
        return self._run(self.sequencer.idle(source, flush=False))

    def resume(self, source: str) -> None:
        self.sequencer.resume(source)

    def set_sources(self, partitions: int) -> None:
        self.sequencer.set_sources(partitions)

    def end_of_input(self) -> Emitted:
        return self._run(self.sequencer.end_of_input(flush=False))

    def forget(self, identifier: str, *, request_id: str | None = None) -> Emitted:
        return self._run(self.sequencer.forget(identifier, request_id=request_id, flush=False))

    def _run(self, sequenced: Sequenced) -> Emitted:
        out = Emitted(identity=sequenced.identity, identity_map=sequenced.identity_map,
                      stitched=sequenced.stitched, late=sequenced.late)
        self.cross_merges += sequenced.merges
        sent: deque = deque()
        for shard, items in sequenced.items.items():
            if items:
                self._collect(self.cores[shard].process(items), out, sent)
        while sent:
            shard, transfer = sent.popleft()
            self.transfers += 1
            # through JSON, as on the wire: the receiving shard owns its objects
            received = self.cores[shard].transfer([orjson.loads(orjson.dumps(transfer))])
            self._collect(received, out, sent)
        self.sequencer.flush()
        for core in self.cores:
            core.flush()
        return out

    def _collect(self, shard_out: ShardOut, out: Emitted, sent: deque) -> None:
        out.extend(shard_out)
        sent.extend(shard_out.transfers)
        self.parked += len(shard_out.parked)
