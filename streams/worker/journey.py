"""The journey's two shells: the sequencer on `parcours.stitch`, the shards on `parcours.journey`.

Nothing here decides anything about touchpoints (streams/shards does). Each batch goes the same
way: outputs first, then its framed changelog (streams/worker/journal.py); the agent acknowledges
the input after both, so a crash anywhere replays the batch from the last consistent state and
sends the same records again (deterministic ids, idempotent sinks, sequence numbers).

- `SequencerShell.run`: stitch messages (touchpoints, idle/resume reports, erasures) through the
  `Sequencer`; its items go to their shard's partition of `parcours.journey`, its own records
  (identity events, identity map, anonymous touchpoints) to their topics and the sink topic.
  When a batch erases someone, its own records are acknowledged before the items are sent, so the
  shard's erasure of the person's rows comes after every row about them.
- `ShardShell.run`: journey items and transfers of the shards this worker owns, each partition
  through its own `ShardCore`; transfers to other shards go to their partition of
  `parcours.transfer`; a forget's rows are erased on the sink topic after the shard's own rows.
"""
from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from typing import Callable

import orjson

from streams.config import Topics
from streams.pipeline import Emitted
from streams.shards import Sequenced, Sequencer, ShardCore, ShardOut
from streams.worker import metrics, sink_blocks
from streams.worker.outputs import journey_records
from streams.worker.shell import CONTROL, Phases, chunk_json_lists, count_outputs

log = logging.getLogger("parcours.agents")


class SequencerShell:
    def __init__(self, sequencer: Sequencer, topics: Topics, producer,
                 changelog: Callable[[], list], note_positions: Callable = lambda msgs: None,
                 log_ends=None):
        self.sequencer = sequencer
        self.topics = topics
        self.producer = producer
        self.changelog = changelog
        self.note_positions = note_positions
        self.log_ends = log_ends  # streams.kafka.log_ends.LogEnds (None: trust the reports)
        self.skipped = 0  # stitch messages read again after a restart, applied before
        self.encoder = None  # public topic values: JSON, or Avro (output_schemas.OutputEncoder)

    async def _settle(self, before: bool, end: int | None = None) -> None:
        """Decide the idle reports not decided yet, and check the partitions held as idle, against
        the input's log ends: a partition whose log grew past the end offset it was found idle
        at has records its ingest worker has not forwarded yet (that worker may be down,
        rebalancing, or slower than the ones forwarding the other partitions), so it holds the
        frontier (an idle one resumes, a report is dropped); the others' reports make them idle.
        When the ends cannot be read, the idle partitions hold the frontier and the reports wait
        (late beats wrong).

        A check is made before each batch is ordered (`before`; `end`: the batch's last stitch
        offset) and after it (its idle reports). It is recorded with its decisions, found changed
        or not, as a changelog run of its own before anything they release is sent, with the part
        of the stitch order it decided for (`Watermark.checked`): before a batch, the batch;
        after it, that point alone. Messages read again after a crash, in whatever batches, are
        ordered under the decisions made for them the first time, whatever the logs hold by then:
        no check is made inside a part decided already (were it, the same messages could release
        other events and number their items otherwise, and the shards would skip the new numbers
        as seen); `run` stops a round at its end, so newer messages get a check of their own."""
        wm = self.sequencer.watermark
        position = wm.position
        start, stop = wm.checked
        if start <= position < stop or (not before and start == stop == position):
            return  # decided for already (a post-check: made here already)
        idle_at, reported = dict(wm.idle_at), dict(wm.reported)
        asked = {**idle_at, **reported}
        if self.log_ends is None or not asked:
            return
        try:
            grown = {str(p) for p in await self.log_ends.grown(
                self.topics.touchpoints, {int(s): int(at) for s, at in asked.items()})}
        except Exception as exc:  # the broker unreachable for now: the next batch asks again
            log.warning("input log ends not read (%s): idle partitions %s hold the frontier",
                        exc, ", ".join(sorted(idle_at)) or "none")
            grown, reported = set(idle_at), {}
        held = sorted(grown & idle_at.keys())
        for source in held:
            self.sequencer.resume(source)
        for source in reported:
            wm.decide(source, idle=source not in grown)
        if held:
            log.info("idle input partitions with records not forwarded yet hold the frontier: %s",
                     ", ".join(held))
        wm.set_checked(position, max(position, end) if before and end is not None else position)
        self.sequencer.flush()
        await self.producer.send_all(self.changelog())

    async def _release(self) -> None:
        """What the frontier has passed since the last decisions, out now. Also the first step of
        every batch: decisions recorded just before a crash whose release was not are released
        before anything newer is ordered, as they were the first time."""
        seq = self.sequencer
        out = seq.release(flush=False)
        if (any(out.items.values()) or out.identity or out.identity_map or out.stitched
                or out.late or any(state.pending for state in seq.states.values())):
            await self._emit(out, 0, Phases("sequencer"))

    def _run(self, items: list[dict]) -> tuple[Sequenced, int]:
        """Touchpoints through the sequencer, control records (reports, erasures) in order. With
        the log ends to check, an idle report is noted, and decided after the batch (`_settle`)."""
        seq = self.sequencer
        out, run, size = seq.empty(), [], 0
        for item in items:
            if CONTROL not in item:
                run.append(item)
                continue
            if run:
                out.extend(seq.process(run, flush=False))
                size, run = size + len(run), []
            control = item[CONTROL]
            if control == "idle":
                if self.log_ends is not None and item.get("at") is not None:
                    seq.watermark.report_idle(item["source"], item["at"])
                else:
                    out.extend(seq.idle(item["source"], at=item.get("at"), flush=False))
            elif control == "resume":
                seq.resume(item["source"])
            elif control == "forget":
                out.extend(seq.forget(item["identifier"], request_id=item.get("request_id"),
                                      flush=False))
            else:
                log.error("unknown control record %r ignored", control)
        if run:
            out.extend(seq.process(run, flush=False))
            size += len(run)
        return out, size

    async def run(self, events) -> None:
        started = time.perf_counter()
        size = 0
        while True:  # one round, or more when a part of them was decided for before a crash
            events, n = await self._round(events)
            size += n
            if not events:
                break
        metrics.BATCH_SIZE.labels("sequencer").observe(size)
        metrics.BATCH_SECONDS.labels("sequencer").observe(time.perf_counter() - started)

    async def _round(self, events) -> tuple[list, int]:
        """Order the stitch messages of `events` that are new, up to the end of the part of the
        stitch order a recorded check decided for (a crash came after it); the messages after
        it are returned for the next round."""
        seq = self.sequencer
        wm = seq.watermark
        applied = wm.position  # messages up to it are in the state already
        # what earlier decisions released, then idle partitions that grew and what earlier
        # batches left undecided (a crash between a batch and its check), before this batch
        await self._release()
        await self._settle(before=True, end=max((e.message.offset for e in events), default=None))
        await self._release()
        start, stop = wm.checked
        limit = stop if start <= applied < stop else None
        now = [e for e in events if limit is None or e.message.offset <= limit]
        later = [e for e in events if limit is not None and e.message.offset > limit]
        fresh = [event for event in now if event.message.offset > applied]
        self.skipped += len(now) - len(fresh)
        items: list[dict] = []
        phase = Phases("sequencer")
        for event in fresh:
            try:
                items.extend(orjson.loads(event.message.value))
            except orjson.JSONDecodeError as exc:  # only parcours writes this topic
                log.error("unreadable internal message %s@%s: %s", event.message.partition,
                          event.message.offset, exc)
        out, size = self._run(items)
        if fresh:
            wm.set_position(max(e.message.offset for e in fresh))
        phase("pipeline")
        await self._emit(out, size, phase)
        self.note_positions(event.message for event in now)
        await self._settle(before=False)  # this batch's idle reports
        await self._release()
        return later, size

    async def _emit(self, out: Sequenced, size: int, phase: Phases) -> None:
        """A result's records out, then the state's changelog run."""
        seq = self.sequencer
        own = Emitted(identity=out.identity, identity_map=out.identity_map,
                      stitched=out.stitched, late=out.late)
        records, sink = journey_records(own, self.topics, int(time.time() * 1000),
                                        encoder=self.encoder)
        forgotten = [ev["survivor"] for ev in out.identity if ev["kind"] == "forget"
                     and ev["survivor"]]
        records += [(self.topics.identity, pid.encode(), None) for pid in forgotten]
        journey = [(self.topics.journey, None, chunk, shard)
                   for shard, shard_items in out.items.items() if shard_items
                   for chunk in chunk_json_lists(shard_items)]
        if forgotten:  # the rows about the person are in before their shard erases them
            await self.producer.send_all(records + sink)
            await self.producer.send_all(journey)
        else:
            await self.producer.send_all(records + sink + journey)
        phase("outputs")
        seq.flush()
        await self.producer.send_all(self.changelog())
        phase("changelog")
        metrics.EVENTS_IN.labels(self.topics.stitch).inc(size)
        count_outputs(itertools.chain(records, sink, journey))
        if out.merges:
            metrics.SHARD_CROSS_MERGES.inc(out.merges)
        merges = sum(1 for ev in out.identity if ev["kind"] == "merge")
        if merges:
            metrics.IDENTITY_MERGES.inc(merges)
        for ev in out.identity:
            if ev["kind"] == "refused":
                metrics.IDENTITY_REFUSALS.labels(metrics.refusal_reason(ev["reason"])).inc()
        if out.late:
            metrics.LATE_EVENTS.inc(len(out.late))
        if seq.watermark.value > 0:
            metrics.WATERMARK.set(seq.watermark.value / 1000)
        metrics.HELD_EVENTS.set(len(seq.buffer))
        if self.skipped:
            metrics.REDELIVERED.labels("stitch").inc(self.skipped)
            self.skipped = 0
        if seq.redelivered:
            metrics.REDELIVERED.labels("input").inc(seq.redelivered)
            seq.redelivered = 0


class ShardShell:
    def __init__(self, make_core: Callable[[int], ShardCore], topics: Topics, producer,
                 changelog: Callable[[int], list]):
        self.make_core = make_core
        self.topics = topics
        self.producer = producer
        self.changelog = changelog
        self.cores: dict[int, ShardCore] = {}
        self.encoder = None  # public topic values: JSON, or Avro (output_schemas.OutputEncoder)

    def reset(self) -> None:
        """The tables were recovered: every core is rebuilt over its recovered state."""
        self.cores.clear()

    def core(self, shard: int) -> ShardCore:
        core = self.cores.get(shard)
        if core is None:
            core = self.cores[shard] = self.make_core(shard)
        return core

    async def run(self, events, owned: Callable[[int], bool] = lambda shard: True) -> None:
        started = time.perf_counter()
        topics = self.topics
        work: dict[int, tuple[list, list]] = {}
        skipped = 0
        for event in events:
            message = event.message
            if not owned(message.partition):  # read before a rebalance moved the shard away
                skipped += 1
                continue
            items, transfers = work.setdefault(message.partition, ([], []))
            (items if message.topic == topics.journey else transfers).extend(
                orjson.loads(message.value))
        if skipped:
            log.warning("%d journey records of shards this worker no longer owns skipped",
                        skipped)
        phase = Phases("shard")
        outs: dict[int, ShardOut] = {}
        for shard, (items, transfers) in sorted(work.items()):
            core = self.core(shard)
            out = core.transfer(transfers)
            outs[shard] = core.process(items, out)
        merged = Emitted()
        moved, erased = [], []
        for out in outs.values():
            merged.extend(out)
            moved.extend(out.transfers)
            erased.extend(out.erased)
        phase("pipeline")
        erasures = [(topics.sink, None, sink_blocks.erase(request_id, profile_id, identifiers))
                    for request_id, profile_id, identifiers in erased]
        records, sink = journey_records(merged, topics, int(time.time() * 1000), erasures,
                                        encoder=self.encoder)
        records += [(topics.stitched, profile_id.encode(), None) for _r, profile_id, _i in erased]
        by_shard: dict[int, list] = {}
        for shard, transfer in moved:
            by_shard.setdefault(shard, []).append(transfer)
        handed = [(topics.transfer, None, chunk, shard) for shard, transfers in by_shard.items()
                  for chunk in chunk_json_lists(transfers)]
        await self.producer.send_all(records + sink + handed)
        phase("outputs")
        changelog = []
        for shard in outs:
            self.cores[shard].flush()
            changelog += self.changelog(shard)
        if changelog:
            await self.producer.send_all(changelog)
        phase("changelog")
        self._metrics(outs, records, sink, handed, started)

    def _metrics(self, outs: dict[int, ShardOut], records, sink, handed, started) -> None:
        count_outputs(itertools.chain(records, sink, handed))
        triggers = Counter()
        suppressions = Counter()
        size = 0
        for shard, out in outs.items():
            size += len(out.stitched)
            triggers.update((t["rule"], t["channel"]) for t in out.triggers)
            suppressions.update(sup["reason"] for sup in out.suppressions)
            if out.transfers:
                metrics.SHARD_TRANSFERS.labels("sent").inc(len(out.transfers))
            if out.received:
                metrics.SHARD_TRANSFERS.labels("received").inc(len(out.received))
            if out.parked:
                metrics.SHARD_PARKED.inc(len(out.parked))
            for waited in out.resumed:
                metrics.SHARD_PARK_SECONDS.observe(waited)
            if out.duplicates:
                metrics.SHARD_DUPLICATES.inc(len(out.duplicates))
            metrics.SHARD_PARKED_NOW.labels(str(shard)).set(self.cores[shard].waiting())
        for (rule, channel), n in triggers.items():
            metrics.TRIGGERS.labels(rule, channel).inc(n)
        for reason, n in suppressions.items():
            metrics.SUPPRESSIONS.labels(reason).inc(n)
        metrics.EVENTS_IN.labels(self.topics.journey).inc(size)
        metrics.BATCH_SIZE.labels("shard").observe(size)
        metrics.BATCH_SECONDS.labels("shard").observe(time.perf_counter() - started)
