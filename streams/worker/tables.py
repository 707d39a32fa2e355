"""The worker's state: two Faust tables, and the journals the cores see over them.

- `sequencer` (1 partition, co-partitioned with `parcours.stitch`): the sequencer's stores
  (identity, held events, placement, watermark and positions). It lives with the owner of the
  stitch topic.
- `shards` (N = `PARCOURS_JOURNEY_PARTITIONS` partitions, co-partitioned with `parcours.journey`
  and `parcours.transfer`): partition p holds shard p's stores (paths, moments, preferences,
  timers, identifier types, parked profiles, transfers, its clock). Faust's assignor gives
  partition p of all three to one worker, so a shard's state is where its items are read.

Each table partition's stores share one changelog partition, so a batch is one framed run of
records there and recovery applies only committed runs (streams/worker/journal.py). Where the
rows live is `PARCOURS_STORE`: `rocksdb` (the default: one RocksDB database per table partition
under `PARCOURS_DATA_DIR/faust`; a restart on the same disk reads only the changelog's tail) or
`memory` (every start replays the changelog). The changelog records are Faust's own format (JSON
key, JSON value, None = delete), produced by the shell with its batched producer, so Faust's own
recovery and standbys (`PARCOURS_STANDBY_REPLICAS`) read them.

The end offset that decides where recovery stops comes from `streams.kafka.patches`
(`install_faust_recovery_fix`): with Tansu's ListOffsets answer (base offset of the last batch +
1) Faust would stop before the last changelog batch, and its consistency check would refuse a
persisted offset "ahead of highwater".
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import faust

from streams.shards.sequencer import SEQUENCER_STORES
from streams.shards.shard import SHARD_STORES
from streams.worker import gc_tuning, metrics
from streams.worker.journal import OFFSET_KEY, CommitFilter, Journal

__all__ = ["OFFSET_KEY", "STORE_URLS", "TABLE_NAMES", "Tables"]

log = logging.getLogger("parcours.app")

TABLE_NAMES = {"sequencer": "sequencer-state", "shards": "shard-state"}
# faust-streaming 0.15.3 registers no "rocksdict://" scheme: its "rocksdb://" store drives rocksdict
STORE_URLS = {"memory": "memory://", "rocksdb": "rocksdb://"}
# RocksDB options per table partition (faust.stores.rocksdb.RocksDBOptions): Faust's defaults are
# sized for one big table (64 MB x 3 memtables, a 2 GB block cache)
ROCKSDB_OPTIONS = {"driver": "rocksdict", "write_buffer_size": 16 * 1024**2,
                   "max_write_buffer_number": 2, "block_cache_size": 64 * 1024**2}


class Tables:
    """The two tables, their commit filters, and one `Journal` per partition this worker uses.

    `store`: "memory" or "rocksdb", as the app was built with (`faust_app`, `STORE_URLS`)."""

    def __init__(self, app: faust.App, store: str = "memory", cache_keys: int = 100_000,
                 shards: int = 1):
        self.kind = store
        self.cache_keys = cache_keys
        self.shards = shards

        def table(name: str, partitions: int):
            return app.Table(TABLE_NAMES[name], default=None, partitions=partitions,
                             use_partitioner=True, key_type=str,
                             **({"options": dict(ROCKSDB_OPTIONS)} if store == "rocksdb" else {}))

        self.tables = {"sequencer": table("sequencer", 1), "shards": table("shards", shards)}
        self.filters = {name: CommitFilter(t) for name, t in self.tables.items()}
        for t in self.tables.values():
            _count_recovered(t)
        self._journals: dict[tuple[str, int], Journal] = {}
        self.by_topic = {t.changelog_topic.get_topic_name(): name
                         for name, t in self.tables.items()}

    def journal(self, name: str, partition: int) -> Journal:
        key = (name, partition)
        journal = self._journals.get(key)
        if journal is None:
            names = SEQUENCER_STORES if name == "sequencer" else SHARD_STORES
            journal = self._journals[key] = Journal(self.tables[name], partition, names, self.kind,
                                                    self.cache_keys)
        return journal

    def sequencer_stores(self) -> dict:
        return self.journal("sequencer", 0).views

    def shard_stores(self, shard: int) -> dict:
        return self.journal("shards", shard).views

    def changelog(self, name: str, partition: int) -> list[tuple]:
        """The framed changelog records of one partition's state changes since the last call."""
        return self.journal(name, partition).drain()

    def acked(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """`BatchProducer.on_acked`: the last acknowledged offset per (topic, partition) of one
        `send_all`; for a changelog partition, its journal records that its writes are there."""
        for (topic, partition), offset in offsets.items():
            name = self.by_topic.get(topic)
            if name is not None:
                journal = self._journals.get((name, partition))
                if journal is not None:
                    journal.acked(offset)

    def on_recover(self, callback) -> None:
        """After every recovery (at start, after a rebalance): stale caches and held tails go,
        then `callback()` (the shell drops its cores; they are rebuilt over the recovered
        state)."""

        async def recovered() -> None:
            for journal in self._journals.values():  # kept: the cores hold their views
                journal.recovered()
            for name, t in self.tables.items():
                active = {tp.partition for tp in t.app.assignor.assigned_actives()
                          if tp.topic == t.changelog_topic.get_topic_name()}
                self.filters[name].reset(active)
            callback()
            gc_tuning.freeze()  # the recovered state is long-lived: out of the collector's way
            log.info("tables recovered; uncommitted changelog records dropped so far: %d",
                     sum(f.discarded for f in self.filters.values()))

        self.tables["sequencer"].on_recover(recovered)


def _count_recovered(table) -> None:
    """Count the changelog records Faust's recovery applies to `table`
    (`parcours_changelog_recovered_total{table}`): recovery calls `table.apply_changelog_batch`
    with every buffer of records it read, actives and standbys alike."""
    apply = getattr(table, "apply_changelog_batch", None)
    if apply is None:  # a stand-in table (unit tests)
        return
    counter = metrics.CHANGELOG_RECOVERED.labels(table.name)

    def apply_changelog_batch(batch) -> None:
        batch = batch if isinstance(batch, list) else list(batch)
        counter.inc(len(batch))
        apply(batch)

    table.apply_changelog_batch = apply_changelog_batch
