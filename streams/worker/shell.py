"""The ingest stage's shell: raw touchpoints in, normalised ones to the stitch topic.

Nothing here decides anything about touchpoints: `ingest_batch` does. The shell forwards the valid
records, dead-letters the rest (and their ClickHouse rows, as sink-topic records), and reports
input partitions idle or active again to the sequencer through the stitch topic. The journey's
shells (the sequencer and the shards) are in streams/worker/journey.py.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Callable, Iterable, Mapping

import orjson

from streams.config import Topics
from streams.ingest import OFFSET, SOURCE, ingest_preferences
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.ingest.normalise import ingest_batch
from streams.worker import metrics, sink_blocks
from streams.worker.output_schemas import OutputEncoder

log = logging.getLogger("parcours.agents")

MAX_CHUNK_BYTES = 256 * 1024  # internal stitch messages carry many touchpoints each
CONTROL = "_control"  # a stitch-topic item with this key is a command (erasure), not a touchpoint
IDLE_REPEAT = 5  # an idle partition is reported again every this many idle checks


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


class Phases:
    """Time the phases of one batch into parcours_phase_seconds{stage, phase}."""

    __slots__ = ("stage", "last")

    def __init__(self, stage: str):
        self.stage = stage
        self.last = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        metrics.PHASE_SECONDS.labels(self.stage, name).observe(now - self.last)
        self.last = now


def count_outputs(records: Iterable[tuple]) -> None:
    """parcours_events_out{topic}: one labels() lookup per topic (~2.6 us each), not per record."""
    for topic, n in Counter(record[0] for record in records).items():
        metrics.EVENTS_OUT.labels(topic).inc(n)


class Shell:
    """State the ingest stage and the reports share: where outputs go, progress for lag."""

    def __init__(self, topics: Topics, producer, max_future_ms: int = DEFAULT_MAX_FUTURE_MS, *,
                 writer_schemas=None, encoder: OutputEncoder | None = None):
        self.max_future_ms = max_future_ms  # ingest refuses events further ahead of its clock
        # with a schema registry: its writer schemas, by the ids of each batch (writer_schemas.py)
        self.writer_schemas = writer_schemas
        self.encoder = encoder or OutputEncoder()  # dead letters: JSON, or Avro (output_schemas)
        self.topics = topics
        self.producer = producer  # BatchProducer: send_all(records) waits for the broker's acks
        self.positions: dict[tuple[str, int], int] = {}
        self.idle_sent: dict[tuple[str, int], int] = {}  # reported idle -> checks since
        # input partitions this worker told the journey hold the frontier (resumed, or forwarded
        # from) since it started or reported them idle; `inputs` lists this worker's input
        # partitions with their high-water marks (None: not known yet)
        self.holding: set[tuple[str, int]] = set()
        self.inputs: Callable[[], list[tuple[int, int | None]]] = list
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
            self.idle_sent.pop(key, None)
            self.holding.discard(key)

    def note_positions(self, messages) -> None:
        last = {(msg.topic, msg.partition): msg.offset + 1 for msg in messages}
        self.positions.update(last)
        for key in last:
            self.idle_sent.pop(key, None)

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
        the report says at which log end offset (`at`: the sequencer resumes it itself when that
        end moves before this worker forwards the new records). It is reported once, then again
        every `IDLE_REPEAT` checks while it stays idle: a resume report another worker forwarded
        late (it read the partition before a rebalance gave it here) would otherwise hold the
        frontier for good."""
        idle = []
        for partition, highwater in partitions:
            key = (self.topics.touchpoints, partition)
            position = self.positions.get(key)
            if position is None:
                position = started.get(partition, 0) if started else 0
            previous, self.checked[key] = self.checked.get(key), position
            if highwater is None:
                continue
            if key in self.idle_sent:
                self.idle_sent[key] += 1
                if self.idle_sent[key] < IDLE_REPEAT:
                    continue
            if position >= highwater and previous == position:
                idle.append({CONTROL: "idle", "source": str(partition), "at": highwater})
                self.idle_sent[key] = 0
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
            writers = None
            if self.writer_schemas is not None:  # waits while the registry is unavailable
                writers = await self.writer_schemas.for_batch(raw[0] for raw in raws)
            good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET,
                                      max_future_ms=self.max_future_ms, writers=writers)
            resumes = self._resumes(messages)
        records = [(self.topics.stitch, None, chunk) for chunk in chunk_json_lists(resumes + good)]
        if dead:
            values = [orjson.dumps(record) for record in dead]
            topic = self.topics.dead_letter
            records += [(topic, None, value) for value in values] if not self.encoder.avro else [
                (topic, None, self.encoder.encode("dead_letters", topic, record))
                for record in dead]
            records += [(self.topics.sink, None, block) for block in
                        sink_blocks.encode("dead_letters", values, int(time.time() * 1000))]
        await self.producer.send_all(records)
        for record in dead:
            metrics.DEAD_LETTERS.labels(record["error"]).inc()
            log.warning("dead-lettered %s[%s]@%s: %s", record["topic"], record["partition"],
                        record["offset"], record["reason"])
        self.note_positions(messages)
        metrics.EVENTS_IN.labels(messages[0].topic if messages else self.topics.touchpoints
                                 ).inc(len(messages))
        metrics.EVENTS_OUT.labels(self.topics.stitch).inc(len(good))
        metrics.EVENTS_OUT.labels(self.topics.dead_letter).inc(len(dead))
        metrics.BATCH_SIZE.labels("ingest").observe(len(messages))
        metrics.BATCH_SECONDS.labels("ingest").observe(time.perf_counter() - started)
