"""The Faust app: topics, tables, the ingest stage and the journey agent, wired to the pure core and
the sink.

Partitioning (see README "How the stream is partitioned"):
- `touchpoints` has any number of partitions; the ingest stage is stateless and scales with them. It
  reads with its own aiokafka group consumer (`<app id>-ingest`, streams/kafka/consumer.py), in
  batches: Faust's per-record stream would cap it at ~10k records/s.
- `parcours.stitch` has ONE partition: the `sequencer` agent sees every normalised touchpoint in
  one total order and does only what needs it (event time, identity, placement), so identity
  merges are correct whichever input partition an identifier arrives on.
- `parcours.journey` and `parcours.transfer` have N = `PARCOURS_JOURNEY_PARTITIONS` partitions,
  one per profile shard: the `shards` agent runs attribution, moments and the gate for the shards
  this worker owns, and hands a merged profile's state to its survivor's shard (streams/shards).
  The stream gives exactly what `parcours replay` gives, for any N.
- Tables: `sequencer-state` (1 partition, with the stitch topic) and `shard-state` (N partitions,
  co-partitioned with the journey topic), each with `PARCOURS_STANDBY_REPLICAS` standbys; a batch
  is one framed run on its changelog partition (streams/worker/journal.py, tables.py).

The parts: the tables, the agents, tasks and timers (streams/worker/agents.py), the inventory
follower (streams/worker/followers.py), the ingest shell (streams/worker/shell.py) and the
journey's shells (streams/worker/journey.py). Every Kafka client comes from `KafkaClients`.
"""
from __future__ import annotations

import faust

from schemas.confluent.writers import WriterCache
from streams.config import Settings, attribution_config
from streams.kafka import patches
from streams.kafka.clients import KafkaClients
from streams.kafka.log_ends import LogEnds
from streams.kafka.producer import BatchProducer
from streams.moments.rules.loader import load_default
from streams.moments.stage import References
from streams.shards import Sequencer, ShardCore
from streams.worker.agents import Agents, AppTopics, Journey
from streams.worker.journey import SequencerShell, ShardShell
from streams.worker.output_schemas import OutputEncoder
from streams.worker.shell import Shell
from streams.worker.sink_stage import SinkStage
from streams.worker.tables import STORE_URLS, Tables
from streams.worker.writer_schemas import WriterSchemas

__all__ = ["create_app", "declare_topics", "faust_app", "sink_stage"]


def create_app(settings: Settings, sink=None, rules=None,
               encoder: OutputEncoder | None = None) -> tuple[faust.App, Shell]:
    """The worker's Faust app, and the shell its agents hand every batch to. `encoder`: how the
    public topics are written (`output_schemas.output_encoder`: with Avro and a schema registry,
    built before, its schemas registered; default: what `settings` ask for, local ids)."""
    patches.install_faust_recovery_fix()
    patches.install_leave_group_fix()
    patches.install_fetch_wait_fix(settings.fetch_max_wait_ms)
    patches.install_seek_back_fix()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clients = KafkaClients.of(settings)
    app = faust_app(settings, clients)
    rules = rules if rules is not None else load_default()
    topics = declare_topics(app, settings, rules)
    tables = Tables(app, settings.store, settings.store_cache_keys,
                    shards=settings.journey_partitions)
    references = References.of(rules)
    attribution = attribution_config(settings)
    producer = BatchProducer(clients, client_id=f"{settings.app_id}-outputs")
    producer.on_acked = tables.acked  # the RocksDB tables record how far their changelog is
    if encoder is None:
        if settings.output_format == "avro" and settings.schema_registry is not None:
            raise ValueError("Avro outputs with a schema registry: pass the encoder "
                             "output_schemas.output_encoder() built (it registers the schemas)")
        encoder = OutputEncoder(avro=settings.output_format == "avro")
    shell = Shell(settings.topics, producer, max_future_ms=settings.max_future_ms,
                  writer_schemas=writer_schemas(settings), encoder=encoder)
    sequencer = Sequencer(tables.sequencer_stores(), shards=settings.journey_partitions,
                          lateness_ms=rules.lateness_ms)

    def make_core(shard: int) -> ShardCore:
        return ShardCore(shard, tables.shard_stores(shard), rules=rules,
                         attribution_config=attribution, references=references)

    journey = Journey(
        SequencerShell(sequencer, settings.topics, producer,
                       lambda: tables.changelog("sequencer", 0), shell.note_positions,
                       LogEnds(clients)),
        ShardShell(make_core, settings.topics, producer,
                   lambda shard: tables.changelog("shards", shard)),
        references)

    def recovered() -> None:
        sequencer.reset_caches()
        journey.shards.reset()

    tables.on_recover(recovered)
    journey.sequencer.encoder = journey.shards.encoder = encoder
    sink_writer = sink_stage(settings, clients, sink)
    if sink_writer is not None:
        sink_writer.encoder = encoder
    Agents(app, settings, clients, shell, topics, journey, sink_writer).register()
    return app, shell


def writer_schemas(settings: Settings) -> WriterSchemas | None:
    """With a schema registry: the ingest shell's writer schemas by id (None without one)."""
    if settings.schema_registry is None:
        return None
    from schemas.confluent.client import RegistryClient

    return WriterSchemas(RegistryClient(settings.schema_registry),
                         WriterCache(settings.schema_registry.unknown_ttl_s))


def sink_stage(settings: Settings, clients: KafkaClients, sink) -> SinkStage | None:
    """The stage writing ClickHouse from the sink topic (None without a sink)."""
    if sink is None:
        return None
    from sinks.erasure import erase

    return SinkStage(clients, settings.topics, f"{settings.app_id}-sink", sink,
                     BatchProducer(clients, client_id=f"{settings.app_id}-sink"),
                     max_rows=settings.sink_batch_rows, max_age_s=settings.sink_batch_seconds,
                     session_timeout_s=settings.session_timeout, erase=erase)


def faust_app(settings: Settings, clients: KafkaClients) -> faust.App:
    """The Faust app: tables on `settings.store` (RocksDB or memory) with standby replicas, no web
    server, commits every batch or second."""
    return faust.App(
        settings.app_id,
        **clients.faust_broker(),
        store=STORE_URLS[settings.store],
        table_standby_replicas=settings.standby_replicas,
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
        # a revoked partition's batch in flight finishes (outputs and changelog) before the new
        # owner recovers its table partition: one writer per changelog partition at a time
        stream_wait_empty=True,
        producer_linger=0.005,
        table_cleanup_interval=3600.0,
    )


def declare_topics(app: faust.App, settings: Settings, rules) -> AppTopics:
    """The worker's topics on the app: raw inputs, the stitch topic, and every output (one trigger
    topic per channel the rules send to; the inventory topic compacted)."""
    names = settings.topics
    touchpoints = app.topic(names.touchpoints, value_type=bytes, key_type=bytes,
                            value_serializer="raw", key_serializer="raw",
                            partitions=settings.input_partitions)
    stitch = app.topic(names.stitch, value_type=bytes, value_serializer="raw",
                       key_serializer="raw", partitions=1, internal=True)
    sink = app.topic(names.sink, value_type=bytes, value_serializer="raw", key_serializer="raw",
                     partitions=1, internal=True)
    n = settings.journey_partitions
    journey = app.topic(names.journey, value_type=bytes, value_serializer="raw",
                        key_serializer="raw", partitions=n, internal=True)
    transfer = app.topic(names.transfer, value_type=bytes, value_serializer="raw",
                         key_serializer="raw", partitions=n, internal=True)
    shards = app.topic(names.journey, names.transfer, value_type=bytes, value_serializer="raw",
                       key_serializer="raw", partitions=n, internal=True)
    outputs = [app.topic(name, partitions=1) for name in
               (names.dead_letter, names.stitched, names.identity, names.credit,
                names.suppressions, names.audiences, names.late,
                *map(names.trigger_topic, trigger_channels(rules)))]
    outputs.append(app.topic(names.inventory, partitions=1, compacting=True))
    preferences = app.topic(names.preferences, value_type=bytes, key_type=bytes,
                            value_serializer="raw", key_serializer="raw", partitions=1)
    return AppTopics(touchpoints, stitch, preferences, shards, [sink, journey, transfer, *outputs],
                     sink)


def trigger_channels(rules) -> list[str]:
    """Every channel a rule's action or one of its messages sends to, sorted."""
    return sorted({ch for rule in rules.rules for ch in rule.action.channels}
                  | {ch for rule in rules.rules for m in rule.action.messages for ch in m.channels})
