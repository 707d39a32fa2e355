"""The worker's agents, tasks and timers: what runs on the Faust app, handing batches to the shell.

`Agents.register` puts them on the app in start-up order:
- the output producer, the sequencer's log-ends reader and the schema registry's client (services:
  their connections live as long as the worker);
- `declare_outputs`, `ingest_stage` (raw touchpoints and preference records -> the stitch topic,
  with its own group consumer, streams/kafka/consumer.py), `follow_inventory` and, with a
  ClickHouse sink, `sink_stage` (the sink topic -> ClickHouse, streams/worker/sink_stage.py)
  (tasks);
- the `sequencer` agent on `parcours.stitch` (event time, identity, placement) and the `shards`
  agent on `parcours.journey` + `parcours.transfer` (the per-profile stages of the shards this
  worker owns): streams/worker/journey.py;
- the `report_idle`, `report_stuck` and `report_lag` timers.
A batch that fails for an unexpected reason stops the process before it is acknowledged (`or_die`).
"""
from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

import faust
import mode
from aiokafka import TopicPartition
from faust.types import TP

from streams.config import Settings
from streams.kafka.clients import KafkaClients
from streams.kafka.consumer import IngestConsumer
from streams.worker import metrics
from streams.worker.followers import follow_inventory
from streams.worker.journey import SequencerShell, ShardShell
from streams.worker.shell import Shell
from streams.worker.sink_stage import SinkStage

log = logging.getLogger("parcours.app")

EXIT_BATCH_FAILED = 70  # EX_SOFTWARE
EXIT_CONFIG = 78  # EX_CONFIG
JOURNEY_MAX_MESSAGES = 32  # x up to ~256 KB of touchpoints each
JOURNEY_WITHIN_S = 0.05  # a journey batch waits at most this long for more stitch messages
INVENTORY_WAIT_S = 60  # the journey starts without an inventory that has not caught up by then
STUCK_REPORT_S = 30.0
LAG_REPORT_S = 5.0


@dataclass(frozen=True)
class AppTopics:
    """The Faust topics of the worker: its inputs, the stitch topic, the outputs it declares."""

    touchpoints: faust.TopicT
    stitch: faust.TopicT
    preferences: faust.TopicT
    shards: faust.TopicT  # parcours.journey and parcours.transfer, N partitions each
    outputs: list[faust.TopicT] = field(default_factory=list)
    sink: faust.TopicT | None = None  # the journey's ClickHouse rows, for the sink stage


@dataclass(frozen=True)
class Journey:
    """The journey's shells and what the timers read: the sequencer, the rules' references."""

    sequencer: SequencerShell
    shards: ShardShell
    references: object


class Agents:
    """The agents, tasks and timers of one worker: the Faust app, its settings and its shell, and
    the ingest stage's consumer (built here: its handler is `ingest_records`)."""

    def __init__(self, app: faust.App, settings: Settings, clients: KafkaClients, shell: Shell,
                 topics: AppTopics, journey: Journey, sink: SinkStage | None = None):
        self.app = app
        self.settings = settings
        self.clients = clients
        self.shell = shell
        self.journey = journey
        self.topics = topics
        self.sink = sink
        self.names = settings.topics
        self.ingest = IngestConsumer(
            clients, [self.names.touchpoints, self.names.preferences],
            f"{settings.app_id}-ingest", self.ingest_records,
            max_records=settings.batch_size, max_wait_s=settings.batch_seconds,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            session_timeout_s=settings.session_timeout, on_forget=shell.forget_partitions)
        shell.inputs = self.inputs
        self.inventory_loaded = asyncio.Event()
        self.stuck_clock = None  # the journey's clock at the previous stuck check

    def register(self) -> None:
        """Everything on the app, in start-up order (services, tasks, the agent, the timers)."""
        app = self.app
        app.service(stops_with_app(self.shell.producer))
        if self.journey.sequencer.log_ends is not None:
            app.service(stops_with_app(self.journey.sequencer.log_ends))
        if self.shell.writer_schemas is not None:  # the schema registry's HTTP session
            app.service(stops_with_app(self.shell.writer_schemas))
        app.task(self.declare_outputs)
        app.task(self.ingest_stage)
        app.task(self.follow_inventory)
        if self.sink is not None:
            app.service(stops_with_app(self.sink.producer))
            app.task(self.sink_stage)
        app.agent(self.topics.stitch, name="sequencer")(self.sequence)
        app.agent(self.topics.shards, name="shards")(self.shard)
        app.timer(self.settings.idle_seconds)(self.report_idle)
        app.timer(STUCK_REPORT_S)(self.report_stuck)
        app.timer(LAG_REPORT_S)(self.report_lag)

    def inputs(self) -> list[tuple[int, int | None]]:
        """This worker's input partitions with their high-water marks (None: not known yet)."""
        return [(tp.partition, self.ingest.highwater(tp)) for tp in self.ingest.assignment()
                if tp.topic == self.names.touchpoints]

    async def ingest_records(self, topic: str, records: list) -> None:
        await or_die(self.shell.ingest(records, preferences=topic == self.names.preferences),
                     "ingest")

    async def declare_outputs(self) -> None:
        for topic in self.topics.outputs:
            await topic.maybe_declare()

    async def ingest_stage(self) -> None:
        """Raw touchpoints and preferences -> the stitch topic (streams/kafka/consumer.py)."""
        for topic in (self.topics.touchpoints, self.topics.preferences):
            await topic.maybe_declare()
        await or_die(self.ingest.run(), "ingest consumer")

    async def sink_stage(self) -> None:
        """The sink topic -> ClickHouse (streams/worker/sink_stage.py), off the trigger path."""
        await self.topics.sink.maybe_declare()
        await or_die(self.sink.run(), "sink stage")

    async def follow_inventory(self) -> None:
        """Keep the rules' inventory up to date from the compacted inventory topic (read from its
        start at every start; the journey agent waits until it has caught up)."""
        inventory = self.journey.references.inventory
        if inventory is None:
            self.inventory_loaded.set()
            return
        await or_die(follow_inventory(self.clients, self.names.inventory, inventory,
                                      self.inventory_loaded), "inventory follower")

    async def sequence(self, stream):
        """The stitch topic through the sequencer, in batches."""
        shell, names = self.journey.sequencer, self.names
        journey = await self.shell.producer.partition_count(names.journey)
        if journey != self.settings.journey_partitions:
            log.critical("%s has %d partitions, PARCOURS_JOURNEY_PARTITIONS is %d: set it to %d "
                         "(the shards' state is placed by that count)", names.journey, journey,
                         self.settings.journey_partitions, journey)
            logging.shutdown()
            os._exit(EXIT_CONFIG)
        # the watermark waits for every input partition: ask the broker how many there are
        shell.sequencer.set_sources(await self.shell.producer.partition_count(names.touchpoints))
        # stitch messages carry hundreds of touchpoints each: take what is there, do not wait long
        within = min(JOURNEY_WITHIN_S, self.settings.batch_seconds)
        async for events in stream.take_events(JOURNEY_MAX_MESSAGES, within=within):
            await or_die(shell.run(events), "sequencer")

    async def shard(self, stream):
        """The journey items and transfers of the shards this worker owns, in batches."""
        try:
            await asyncio.wait_for(self.inventory_loaded.wait(), INVENTORY_WAIT_S)
        except asyncio.TimeoutError:
            log.warning("inventory topic %s not caught up after %d s; starting anyway",
                        self.names.inventory, INVENTORY_WAIT_S)
        journey = self.names.journey

        def owned(shard: int) -> bool:
            return TP(journey, shard) in self.app.assignor.assigned_actives()

        within = min(JOURNEY_WITHIN_S, self.settings.batch_seconds)
        async for events in stream.take_events(JOURNEY_MAX_MESSAGES, within=within):
            await or_die(self.journey.shards.run(events, owned), "shard")

    async def report_idle(self) -> None:
        """Input partitions of this worker that are fully consumed stop holding the frontier.
        Decided and sent under the ingest consumer's lock: an idle report never overtakes the
        records (and the resume report) of a batch being forwarded. The consumer's positions of
        partitions with nothing forwarded yet are read before (a lookup may wait)."""
        started = {}
        for tp in self.ingest.assignment():
            if (tp.topic == self.names.touchpoints
                    and (tp.topic, tp.partition) not in self.shell.positions):
                try:
                    started[tp.partition] = await self.ingest.position(tp)
                except Exception:  # not assigned any more / consumer restarting
                    continue
        async with self.ingest.lock:
            await or_die(self.shell.report_idle(self.inputs(), started), "idle report")

    async def report_stuck(self) -> None:
        """A journey holding touchpoints while its clock has not moved for 30 s says which input
        partitions hold the frontier (alert ParcoursEventTimeStuck)."""
        sequencer = self.journey.sequencer.sequencer
        clock, held = sequencer.watermark.clock, len(sequencer.buffer)
        if held and clock == self.stuck_clock:
            log.warning("%d touchpoints held, event time stuck: %s", held,
                        sequencer.watermark.describe())
        self.stuck_clock = clock

    async def report_lag(self) -> None:
        for (topic, partition), position in list(self.shell.positions.items()):
            try:
                if topic == self.names.stitch:
                    highwater = self.app.consumer.highwater(TP(topic, partition))
                else:
                    highwater = self.ingest.highwater(TopicPartition(topic, partition))
            except Exception:  # not assigned any more / consumer restarting
                continue
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(topic, str(partition)).set(max(0, highwater - position))


def stops_with_app(client) -> type[mode.Service]:
    """The app service owning `client`'s connection (a batch producer, the log-ends reader)."""

    class StopsWithApp(mode.Service):
        """Owns a client's connection for the worker's lifetime."""

        async def on_stop(self) -> None:
            await client.stop()

    return StopsWithApp


async def or_die(step, stage: str) -> None:
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
