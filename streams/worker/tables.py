"""The worker's state: one Faust table per pipeline store, and the mapping the core sees over each.

Every table keeps its rows in memory (`store="memory://"`) and has one changelog partition; it
lives with the owner of `parcours.stitch`, and a worker taking over recovers it from its changelog.
"""
from __future__ import annotations

import logging

import faust
import orjson

from streams.identity.graph import share_strings
from streams.pipeline import STORES, Pipeline
from streams.worker import gc_tuning

log = logging.getLogger("parcours.app")

TABLE_NAMES = {"ids": "identity-ids", "profiles": "identity-profiles", "paths": "journey-paths",
               "moments": "journey-moments", "prefs": "journey-preferences",
               "timers": "journey-timers", "pending": "journey-pending", "clock": "journey-clock"}


class TableStore:
    """The mapping the pure core sees over a Faust table (in-memory store).

    Reads and writes go to the table's local dict; every write also marks its key for the changelog,
    and the shell sends the marked keys' last values with the batch's other outputs (one batched
    produce, not one Faust send per key; a key written ten times in a batch is encoded once). The
    records use the table's own format (JSON key, JSON value, None = delete), so Faust's recovery
    reads them back into the table after a restart.
    """

    __slots__ = ("table", "data", "changes")

    def __init__(self, table):
        self.table = table
        self.data = table.data.data  # the memory store's dict
        self.changes: dict[str, object] = {}  # key -> its last value in this batch (None: deleted)

    @property
    def changelog_topic(self) -> str:
        return self.table.changelog_topic.get_topic_name()

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __getitem__(self, key):
        return self.data[key]

    def __contains__(self, key):
        return key in self.data

    def __setitem__(self, key, value):
        self.data[key] = value
        self.changes[key] = value

    def __delitem__(self, key):
        self.data.pop(key, None)
        self.changes[key] = None

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return iter(self.data)

    def drain(self):
        """(topic, key, value) changelog records queued since the last drain."""
        topic = self.changelog_topic
        changes, self.changes = self.changes, {}
        dumps = orjson.dumps
        return [(topic, dumps(k), None if v is None else dumps(v)) for k, v in changes.items()]


class Tables:
    """The app's table of every pipeline store (`TABLE_NAMES`), and the stores over them."""

    def __init__(self, app: faust.App):
        self.tables = {
            name: app.Table(TABLE_NAMES[name], default=None, partitions=1, use_partitioner=True,
                            key_type=str)  # keys and values: JSON (Faust default codec)
            for name in STORES
        }
        self.stores = {name: TableStore(table) for name, table in self.tables.items()}

    def on_recover(self, pipeline: Pipeline) -> None:
        """What follows the tables' recovery from their changelogs (at start, after a takeover)."""
        stores = self.stores

        async def after_recovery() -> None:
            # recovered JSON holds one copy of each string per table: share them again (~40% less
            # memory)
            shared = share_strings(stores["ids"].data, stores["profiles"].data)
            log.info("identity tables recovered: %d identifiers, %d profiles", len(stores["ids"]),
                     shared)
            gc_tuning.freeze()  # the recovered state is long-lived: out of the collector's way

        async def timers_recovered() -> None:
            pipeline.reset_caches()  # the timer index, held events and the clock from the tables
            log.info("recovered %d timers, %d held events", len(stores["timers"]),
                     len(stores["pending"]))

        self.tables["profiles"].on_recover(after_recovery)
        for name in ("timers", "pending", "clock"):
            self.tables[name].on_recover(timers_recovered)

    def changelog(self) -> list[list]:
        """The changelog records of the state changes since the last call, in two phases the shell
        sends one after the other: every store but the clock, then the clock (the input positions),
        so the positions never run ahead of the state."""
        stores = self.stores
        return [[r for name, store in stores.items() if name != "clock" for r in store.drain()],
                stores["clock"].drain()]
