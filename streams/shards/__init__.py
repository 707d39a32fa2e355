"""The journey past one core: a thin identity sequencer and N profile shards.

Reading guide, in the order an event goes:
- `items`: what the sequencer sends each shard on `parcours.journey` (event, merge, handoff,
  forget, tick) and what a shard sends another on `parcours.transfer` (a profile's whole state);
- `placement`: which shard holds a profile (hash of its id mod N, unless a rename or merge kept
  it elsewhere);
- `sequencer`: the stage that reads the one total order of `parcours.stitch` and does only what
  needs the global view: event time, identity, placement (`Sequencer`);
- `shard`: the per-profile stages of one shard, with hand-offs, parking and idempotence
  (`ShardCore`);
- `local`: the sequencer and N shard cores in one process, for `parcours replay --shards` and the
  benchmarks (`LocalShards`).

Why it is exact: `streams.sequencing` (firing points), `shard` (parking, idempotence, no deadlock)
and README "How the stream is partitioned".
"""
from streams.shards.items import Item, Transfer
from streams.shards.local import LocalShards
from streams.shards.placement import Placement
from streams.shards.sequencer import Sequenced, Sequencer
from streams.shards.shard import SHARD_STORES, ShardCore, ShardOut

__all__ = ["Item", "LocalShards", "Placement", "SHARD_STORES", "Sequenced", "Sequencer",
           "ShardCore", "ShardOut", "Transfer"]
