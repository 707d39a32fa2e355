"""Bodies of the Faust agents: move batches between Kafka and the pure core.

Nothing here decides anything about touchpoints: `ingest_batch` and `Pipeline.process` do. The
agents (streams/worker/agents.py) batch (`take_events`); the shell sends every output of a batch in
one produce: the public topics, and the batch's ClickHouse rows as sink-topic records
(streams/worker/sink_blocks.py) that the sink stage writes (streams/worker/sink_stage.py). A batch
is acknowledged once its outputs and its changelog are: no trigger waits for ClickHouse.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from typing import Callable, Mapping

import orjson

from streams.config import Topics
from streams.ingest import OFFSET, SOURCE, ingest_preferences
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.ingest.normalise import ingest_batch
from streams.pipeline import Emitted, Pipeline
from streams.worker import metrics, sink_blocks
from streams.worker.outputs import journey_records

log = logging.getLogger("parcours.agents")

MAX_CHUNK_BYTES = 256 * 1024  # internal stitch messages carry many touchpoints each
CONTROL = "_control"  # a stitch-topic item with this key is a command (erasure), not a touchpoint


def chunk_json_lists(items: list[dict], max_bytes: int = MAX_CHUNK_BYTES) -> list[bytes]:
    """Encode touchpoints as JSON arrays of ~max_bytes at most (at least one item per chunk)."""
    chunks, current, size = [], [], 2
    for item in items:
        encoded = orjson.dumps(item)
        if current and size + len(encoded) + 1 > max_bytes:
            chunks.append(b"[" + b",".join(current) + b"]")
            current, size = [], 2
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        chunks.append(b"[" + b",".join(current) + b"]")
    return chunks


class _Phases:
    """Time the phases of one batch into parcours_phase_seconds{stage, phase}."""

    __slots__ = ("stage", "last")

    def __init__(self, stage: str):
        self.stage = stage
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        metrics.PHASE_SECONDS.labels(self.stage, name).observe(now - self.last)
        self.last = now


class Shell:
    """State the agents share: the pipeline, where outputs go, progress for lag."""

    def __init__(self, pipeline: Pipeline, topics: Topics, producer,
                 changelog: Callable[[], list[list]] = list,
                 max_future_ms: int = DEFAULT_MAX_FUTURE_MS):
        self.pipeline = pipeline
        self.max_future_ms = max_future_ms  # ingest refuses events further ahead of its clock
        self.topics = topics
        self.producer = producer  # BatchProducer: send_all(records) waits for the broker's acks
        # state changes flushed by the pipeline, as changelog records in phases sent one after
        # the other: the last holds the input positions, so they never run ahead of the state
        self.changelog = changelog
        self.positions: dict[tuple[str, int], int] = {}
        self.idle_sent: set[tuple[str, int]] = set()
        # input partitions this worker told the journey hold the frontier (resumed, or forwarded
        # from) since it started or reported them idle; `inputs` lists this worker's input
        # partitions with their high-water marks (None: not known yet)
        self.holding: set[tuple[str, int]] = set()
        self.inputs: Callable[[], list[tuple[int, int | None]]] = list
        self.skipped = 0  # stitch messages read again after a restart, applied before
        self.checked: dict[tuple[str, int], int] = {}  # position at the previous idle check
        self.retry_delay = 1.0
        self.max_retry_delay = 30.0

    def forget_partitions(self, keys: list[tuple[str, int]]) -> None:
        """Input partitions given away or assigned afresh (a rebalance): what this worker noted of
        them is stale. Without it, a partition reported idle that comes back would never be
        reported again (the frontier would wait for it), and one the journey holds as idle would
        get no `resume` before its records."""
        for key in keys:
            self.positions.pop(key, None)
            self.checked.pop(key, None)
            self.idle_sent.discard(key)
            self.holding.discard(key)

    def _note_positions(self, messages) -> None:
        last = {(msg.topic, msg.partition): msg.offset + 1 for msg in messages}
        self.positions.update(last)
        self.idle_sent.difference_update(last)

    def _resumes(self, messages) -> list[dict]:
        """Control records telling the journey that input partitions it may hold as idle have
        records again, sent before this batch: a partition reported idle (or any, after a start,
        since the journey's idle set outlives this process) whose high-water mark moved is held
        again before newer records of other partitions can overtake its own."""
        topic = self.topics.touchpoints
        in_batch = {msg.partition for msg in messages}
        highwaters = dict(self.inputs())  # a partition of the batch may be assigned since
        resumes = []
        for partition in sorted(highwaters.keys() | in_batch):
            key = (topic, partition)
            if key in self.holding:
                continue
            highwater, position = highwaters.get(partition), self.positions.get(key)
            if (partition in in_batch or highwater is None or position is None
                    or highwater > position):
                resumes.append({CONTROL: "resume", "source": str(partition)})
                self.holding.add(key)
        if resumes:
            log.info("input partitions reported active: %s",
                     ", ".join(r["source"] for r in resumes))
        return resumes

    async def report_idle(self, partitions: list[tuple[int, int | None]],
                          started: Mapping[int, int] | None = None) -> int:
        """Tell the journey agent which input partitions are idle. `partitions`: (partition,
        high-water mark) pairs of this worker's assignment, checked every PARCOURS_IDLE_SECONDS;
        `started`: the consumer's position per partition, for those this worker has forwarded
        nothing from yet (a partition an earlier run read to its end). A partition is idle when all
        its records have been forwarded to the stitch topic and none came since the previous check;
        it is reported once, until it sends again."""
        idle = []
        for partition, highwater in partitions:
            key = (self.topics.touchpoints, partition)
            position = self.positions.get(key)
            if position is None:
                position = started.get(partition, 0) if started else 0
            previous, self.checked[key] = self.checked.get(key), position
            if highwater is None or key in self.idle_sent:
                continue
            if position >= highwater and previous == position:
                idle.append({CONTROL: "idle", "source": str(partition)})
                self.idle_sent.add(key)
                self.holding.discard(key)
        if idle:
            await self.producer.send_all([(self.topics.stitch, None, orjson.dumps(idle))])
            log.info("input partitions reported idle: %s", ", ".join(i["source"] for i in idle))
        return len(idle)

    async def ingest(self, messages, *, preferences: bool = False) -> None:
        """Decode + normalise a batch of raw touchpoints; forward the valid, dead-letter the rest.
        `messages`: Kafka records (`topic`, `partition`, `offset`, `value`) of one topic. With
        `preferences`, they are preference-centre records (consent touchpoints that do not move
        the watermark)."""
        started = time.perf_counter()
        raws = [(m.value, m.topic, m.partition, m.offset) for m in messages]
        resumes: list[dict] = []
        if preferences:
            good, dead = ingest_preferences(raws, max_future_ms=self.max_future_ms)
        else:
            good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET,
                                      max_future_ms=self.max_future_ms)
            resumes = self._resumes(messages)
        records = [(self.topics.stitch, None, chunk) for chunk in chunk_json_lists(resumes + good)]
        if dead:
            values = [orjson.dumps(record) for record in dead]
            records += [(self.topics.dead_letter, None, value) for value in values]
            records += [(self.topics.sink, None, block) for block in
                        sink_blocks.encode("dead_letters", values, int(time.time() * 1000))]
        await self.producer.send_all(records)
        for record in dead:
            metrics.DEAD_LETTERS.labels(record["error"]).inc()
            log.warning("dead-lettered %s[%s]@%s: %s", record["topic"], record["partition"],
                        record["offset"], record["reason"])
        self._note_positions(messages)
        metrics.EVENTS_IN.labels(messages[0].topic if messages else self.topics.touchpoints
                                 ).inc(len(messages))
        metrics.EVENTS_OUT.labels(self.topics.stitch).inc(len(good))
        metrics.EVENTS_OUT.labels(self.topics.dead_letter).inc(len(dead))
        metrics.BATCH_SIZE.labels("ingest").observe(len(messages))
        metrics.BATCH_SECONDS.labels("ingest").observe(time.perf_counter() - started)

    def _run(self, items: list[dict]) -> tuple[Emitted, int]:
        """Pipeline over touchpoints, with control records (erasure requests) applied in order."""
        out, run, size = Emitted(), [], 0
        for item in items:
            if CONTROL not in item:
                run.append(item)
                continue
            if run:
                out.extend(self.pipeline.process(run, flush=False))
                size, run = size + len(run), []
            if item[CONTROL] == "idle":
                out.extend(self.pipeline.idle(item["source"], flush=False))
            elif item[CONTROL] == "resume":
                self.pipeline.resume(item["source"])
            elif item[CONTROL] == "forget":
                out.extend(self.pipeline.forget(item["identifier"],
                                                request_id=item.get("request_id"), flush=False))
            else:
                log.error("unknown control record %r ignored", item[CONTROL])
        if run:
            out.extend(self.pipeline.process(run, flush=False))
            size += len(run)
        return out, size

    async def journey(self, events) -> None:
        """Run the stateful pipeline over a batch of normalised touchpoints."""
        started = time.perf_counter()
        items = []
        applied = self.pipeline.watermark.position  # messages up to it are in the state already
        fresh = [event for event in events if event.message.offset > applied]
        self.skipped += len(events) - len(fresh)
        for event in fresh:
            try:
                items.extend(orjson.loads(event.message.value))
            except orjson.JSONDecodeError as exc:  # only parcours writes this topic
                log.error("unreadable internal message %s@%s: %s", event.message.partition,
                          event.message.offset, exc)
        phase = _Phases("journey")
        out, batch_size = self._run(items)
        if fresh:
            self.pipeline.watermark.set_position(max(e.message.offset for e in fresh))
        phase("pipeline")
        # outputs first, state last: a crash before the state reaches its changelog replays the
        # batch, which sends the same records again (deterministic ids, idempotent sinks). The
        # sink stage erases a forgotten profile's rows after the rows sent before the erasure
        # (one ordered partition); tombstones let compaction drop the person's keyed records.
        records, sink = journey_records(out, self.topics, int(time.time() * 1000))
        for ev in out.identity:
            if ev["kind"] == "forget" and ev["survivor"]:
                sink.append((self.topics.sink, None, sink_blocks.erase(
                    ev["event_id"], ev["survivor"], ev["identifiers"])))
                for topic in (self.topics.identity, self.topics.stitched):
                    records.append((topic, ev["survivor"].encode(), None))
        await self.producer.send_all(records + sink)
        phase("outputs")
        # state last: the changelog records of this batch's state changes, the input positions
        # (the clock store) after everything else is acknowledged
        self.pipeline.flush()
        for records_ in self.changelog():
            if records_:
                await self.producer.send_all(records_)
        phase("changelog")
        counts = Counter(topic for topic, _key, _value in itertools.chain(records, sink))
        self._note_positions(event.message for event in events)
        metrics.EVENTS_IN.labels(self.topics.stitch).inc(batch_size)
        for topic, n in counts.items():
            metrics.EVENTS_OUT.labels(topic).inc(n)
        merges = sum(1 for ev in out.identity if ev["kind"] == "merge")
        if merges:
            metrics.IDENTITY_MERGES.inc(merges)
        for ev in out.identity:
            if ev["kind"] == "refused":
                metrics.IDENTITY_REFUSALS.labels(metrics.refusal_reason(ev["reason"])).inc()
        # one labels() lookup per distinct label set (~2.6 us each), not per record
        for (rule, channel), n in Counter((t["rule"], t["channel"]) for t in out.triggers).items():
            metrics.TRIGGERS.labels(rule, channel).inc(n)
        for reason, n in Counter(sup["reason"] for sup in out.suppressions).items():
            metrics.SUPPRESSIONS.labels(reason).inc(n)
        if out.late:
            metrics.LATE_EVENTS.inc(len(out.late))
        watermark = self.pipeline.watermark.value
        if watermark > 0:
            metrics.WATERMARK.set(watermark / 1000)
        metrics.HELD_EVENTS.set(len(self.pipeline.buffer))
        if self.skipped:
            metrics.REDELIVERED.labels("stitch").inc(self.skipped)
            self.skipped = 0
        if self.pipeline.redelivered:
            metrics.REDELIVERED.labels("input").inc(self.pipeline.redelivered)
            self.pipeline.redelivered = 0
        metrics.BATCH_SIZE.labels("journey").observe(batch_size)
        metrics.BATCH_SECONDS.labels("journey").observe(time.perf_counter() - started)
