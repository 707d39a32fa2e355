"""The Faust app: topics, tables, the ingest stage and the journey agent, wired to the pure core and
the sink.

Partitioning (see README "How the stream is partitioned"):
- `touchpoints` has any number of partitions; the ingest stage is stateless and scales with them. It
  reads with its own aiokafka group consumer (`<app id>-ingest`, streams/kafka/consumer.py), in
  batches: Faust's per-record stream would cap it at ~10k records/s.
- `parcours.stitch` has ONE partition: the stateful `journey` agent sees every normalised touchpoint
  in one total order, so identity merges are correct whichever input partition an identifier
  arrives on, and the stream gives exactly what `parcours replay` gives.
- Tables (identity ids, profiles, paths) have one changelog partition each and live with the owner of
  `parcours.stitch`; another worker takes over (recovering the tables) when it dies.
"""
from __future__ import annotations

import asyncio
import logging
import os

import faust
import mode
import orjson
from aiokafka import TopicPartition
from faust.types import TP

from streams.worker.shell import Shell
from streams.kafka.producer import BatchProducer
from streams.config import Settings, attribution_config
from streams.kafka.patches import (install_faust_recovery_fix, install_fetch_wait_fix,
                                 install_leave_group_fix)
from streams.identity.graph import share_strings
from streams.kafka.consumer import IngestConsumer
from streams.moments.rules.loader import load_default
from streams.pipeline import STORES, Pipeline
from streams.worker import gc_tuning, metrics

log = logging.getLogger("parcours.app")

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE
JOURNEY_MAX_MESSAGES = 32  # x up to ~256 KB of touchpoints each
JOURNEY_WITHIN_S = 0.05  # a journey batch waits at most this long for more stitch messages
TABLE_NAMES = {"ids": "identity-ids", "profiles": "identity-profiles", "paths": "journey-paths",
               "moments": "journey-moments", "prefs": "journey-preferences",
               "timers": "journey-timers", "pending": "journey-pending", "clock": "journey-clock"}


class _TableStore:
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


def create_app(settings: Settings, sink=None, rules=None) -> tuple[faust.App, Shell]:
    install_faust_recovery_fix()
    install_leave_group_fix()
    install_fetch_wait_fix(settings.fetch_max_wait_ms)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topics = settings.topics
    app = faust.App(
        settings.app_id,
        broker=settings.kafka_url,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        web_enabled=False,
        web_port=settings.web_port,
        topic_partitions=1,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=settings.session_timeout,
        broker_commit_every=settings.batch_size,
        broker_commit_interval=1.0,
        stream_wait_empty=False,
        producer_linger=0.005,
        table_cleanup_interval=3600.0,
        broker_credentials=settings.kafka_security.faust_credentials(),
    )
    touchpoints = app.topic(topics.touchpoints, value_type=bytes, key_type=bytes,
                            value_serializer="raw", key_serializer="raw",
                            partitions=settings.input_partitions)
    stitch = app.topic(topics.stitch, value_type=bytes, value_serializer="raw",
                       key_serializer="raw", partitions=1, internal=True)
    rules = rules if rules is not None else load_default()
    channels = sorted({ch for rule in rules.rules for ch in rule.action.channels}
                      | {ch for rule in rules.rules for m in rule.action.messages for ch in m.channels})
    outputs = [app.topic(name, partitions=1) for name in
               (topics.dead_letter, topics.stitched, topics.identity, topics.credit,
                topics.suppressions, topics.late, *map(topics.trigger_topic, channels))]
    outputs.append(app.topic(topics.inventory, partitions=1, compacting=True))
    preferences = app.topic(topics.preferences, value_type=bytes, key_type=bytes,
                            value_serializer="raw", key_serializer="raw", partitions=1)
    tables = {
        name: app.Table(TABLE_NAMES[name], default=None, partitions=1, use_partitioner=True,
                        key_type=str)  # keys and values: JSON (Faust default codec)
        for name in STORES
    }
    stores = {name: _TableStore(table) for name, table in tables.items()}

    async def after_recovery() -> None:
        # recovered JSON holds one copy of each string per table: share them again (~40% less memory)
        shared = share_strings(stores["ids"].data, stores["profiles"].data)
        log.info("identity tables recovered: %d identifiers, %d profiles", len(stores["ids"]), shared)
        gc_tuning.freeze()  # the recovered state is long-lived: out of the collector's way

    async def timers_recovered() -> None:
        pipeline.reset_caches()  # the timer index, held events and the clock from the tables
        log.info("recovered %d timers, %d held events", len(stores["timers"]), len(stores["pending"]))

    tables["profiles"].on_recover(after_recovery)
    for name in ("timers", "pending", "clock"):
        tables[name].on_recover(timers_recovered)
    pipeline = Pipeline(stores, rules=rules, attribution_config=attribution_config(settings))
    producer = BatchProducer(settings.kafka_bootstrap, client_id=f"{settings.app_id}-outputs",
                             client_options=settings.kafka_options)
    shell = Shell(pipeline, sink, topics, producer,
                  changelog=lambda: [[r for name, store in stores.items() if name != "clock"
                                      for r in store.drain()], stores["clock"].drain()],
                  max_future_ms=settings.max_future_ms)

    @app.service
    class OutputProducer(mode.Service):
        """Owns the batch producer's connection for the worker's lifetime."""

        async def on_stop(self) -> None:
            await producer.stop()

    @app.task
    async def declare_outputs() -> None:
        for topic in outputs:
            await topic.maybe_declare()

    async def ingest_records(topic: str, records: list) -> None:
        await _or_die(shell.ingest(records, preferences=topic == topics.preferences), "ingest")

    ingest = IngestConsumer(settings.kafka_bootstrap, [topics.touchpoints, topics.preferences],
                            f"{settings.app_id}-ingest", ingest_records,
                            max_records=settings.batch_size, max_wait_s=settings.batch_seconds,
                            fetch_max_wait_ms=settings.fetch_max_wait_ms,
                            session_timeout_s=settings.session_timeout,
                            client_options=settings.kafka_options,
                            on_forget=shell.forget_partitions)

    def inputs() -> list[tuple[int, int | None]]:
        return [(tp.partition, ingest.highwater(tp)) for tp in ingest.assignment()
                if tp.topic == topics.touchpoints]

    shell.inputs = inputs

    @app.task
    async def ingest_stage() -> None:
        """Raw touchpoints and preference records -> the stitch topic (streams/kafka/consumer.py)."""
        for topic in (touchpoints, preferences):
            await topic.maybe_declare()
        await _or_die(ingest.run(), "ingest consumer")

    inventory_loaded = asyncio.Event()

    @app.task
    async def follow_inventory() -> None:
        """Keep the rules' inventory up to date from the compacted inventory topic (read from its
        start at every start; the journey agent waits until it has caught up)."""
        inventory = pipeline.moments.references.inventory
        if inventory is None:
            inventory_loaded.set()
            return
        await _or_die(_follow_inventory(settings.kafka_bootstrap, topics.inventory, inventory,
                                        inventory_loaded, settings.kafka_options),
                      "inventory follower")

    @app.agent(stitch, name="journey")
    async def journey(stream):
        try:
            await asyncio.wait_for(inventory_loaded.wait(), 60)
        except asyncio.TimeoutError:
            log.warning("inventory topic %s not caught up after 60 s; starting anyway", topics.inventory)
        # the watermark waits for every input partition: ask the broker how many there are
        pipeline.set_sources(await producer.partition_count(topics.touchpoints))
        # stitch messages carry hundreds of touchpoints each: take what is there, do not wait long
        async for events in stream.take_events(JOURNEY_MAX_MESSAGES,
                                               within=min(JOURNEY_WITHIN_S, settings.batch_seconds)):
            await _or_die(shell.journey(events), "journey")

    @app.timer(settings.idle_seconds)
    async def report_idle() -> None:
        """Input partitions of this worker that are fully consumed stop holding the frontier.
        Decided and sent under the ingest consumer's lock: an idle report never overtakes the
        records (and the resume report) of a batch being forwarded. The consumer's positions of
        partitions with nothing forwarded yet are read before (a lookup may wait)."""
        started = {}
        for tp in ingest.assignment():
            if tp.topic == topics.touchpoints and (tp.topic, tp.partition) not in shell.positions:
                try:
                    started[tp.partition] = await ingest.position(tp)
                except Exception:  # not assigned any more / consumer restarting
                    continue
        async with ingest.lock:
            await _or_die(shell.report_idle(inputs(), started), "idle report")

    stuck = {"clock": None}

    @app.timer(30.0)
    async def report_stuck() -> None:
        """A journey holding touchpoints while its clock has not moved for 30 s says which input
        partitions hold the frontier (alert ParcoursEventTimeStuck)."""
        clock, held = pipeline.watermark.clock, len(pipeline.buffer)
        if held and clock == stuck["clock"]:
            log.warning("%d touchpoints held, event time stuck: %s", held,
                        pipeline.watermark.describe())
        stuck["clock"] = clock

    @app.timer(5.0)
    async def report_lag() -> None:
        for (topic, partition), position in list(shell.positions.items()):
            try:
                if topic == topics.stitch:
                    highwater = app.consumer.highwater(TP(topic, partition))
                else:
                    highwater = ingest.highwater(TopicPartition(topic, partition))
            except Exception:  # not assigned any more / consumer restarting
                continue
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(topic, str(partition)).set(max(0, highwater - position))

    return app, shell


async def _follow_inventory(bootstrap: str, topic: str, inventory, loaded: asyncio.Event,
                            options: dict | None = None) -> None:
    from aiokafka import AIOKafkaConsumer

    from streams.kafka.patches import true_end_offsets
    from streams.moments.feeds import apply_inventory
    from streams.kafka.unreadable_batches import getmany_readable, install, is_unreadable

    # no group: every partition, from the start (auto_offset_reset) at every start of the worker
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                metadata_max_age_ms=5000, **(options or {}))
    install()
    await consumer.start()
    applied = bad = 0
    ends = None
    try:
        while True:
            for records in (await getmany_readable(consumer, timeout_ms=200)).values():
                for record in records:
                    if is_unreadable(record):  # logged and counted where it was found
                        bad += 1
                    elif apply_inventory(inventory, record.key, record.value):
                        applied += 1
                    else:
                        bad += 1
                        log.warning("unreadable inventory record %s@%d ignored", topic, record.offset)
            tps = consumer.assignment()  # empty until the topic exists (declared at start-up)
            if not loaded.is_set() and tps:
                if ends is None:
                    ends = await true_end_offsets(bootstrap, list(tps), **(options or {}))
                if all([await consumer.position(tp) >= ends.get(tp, 0) for tp in tps]):
                    loaded.set()
                    log.info("inventory loaded from %s: %d updates (%d unreadable)", topic, applied, bad)
    finally:
        await consumer.stop()


async def _or_die(step, stage: str) -> None:
    """Run one batch; on an unexpected error stop the process at once.

    Faust's `take_events` acknowledges a batch when its body raises, and its supervisor restarts
    the agent: the failed batch would be committed unprocessed. Input errors never get here (they
    are dead-lettered) and ClickHouse outages are waited out by the shell; what is left is a bug or
    a broken environment, where exiting before the acknowledgement is the safe answer: the
    restarted worker (Kubernetes, systemd, docker restart policy) resumes from the last commit.
    """
    try:
        await step
    except Exception:
        log.critical("%s batch failed; exiting without acknowledging it", stage, exc_info=True)
        logging.shutdown()
        os._exit(EXIT_BATCH_FAILED)
