"""A model of the worker's journey over partitioned input, for comparing it with `parcours replay`.

Events are spread over N input partitions by their producer key (`streams.simulate.partition_key`:
one browser, device or account per partition). A schedule of actions (produce, consume a chunk of a
partition, end a batch, declare a partition idle, crash) drives one `Pipeline` the way the worker
drives it: ingest tags each touchpoint with its partition and offset, a batch's state is flushed
after its outputs, a crash loses the batch in progress (its outputs may already be out) and the
restarted worker re-reads each partition from an earlier offset, with the tables as the last batch
left them. The outputs are collected the way ClickHouse's `FINAL` reads them (one row per table
key), without wall-clock columns.
"""
from __future__ import annotations

import zlib

import orjson

from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.pipeline import Emitted, Pipeline
from streams.simulate import partition_key

WALL_CLOCK = {"updated_at", "computed_at", "ingested_at"}
KEYS = {  # the ORDER BY of each table (sinks/migrations.py): what FINAL keeps one row of
    "triggers": ("trigger_id",),
    "suppressions": ("suppression_id",),
    "credits": ("model", "conversion_id", "touchpoint_id"),
    "paths": ("path_id",),
    "late": ("event_id",),
    "exposures": ("experiment", "profile_id", "trigger_id"),  # the highest version wins
    "traits": ("profile_id", "created_by"),  # the highest version wins
    "audiences": ("record_id",),
}


def partition_of(event: dict, partitions: int) -> int:
    key = partition_key(event, None)
    return (zlib.crc32(key) % partitions if key
            else zlib.crc32(event["event_id"].encode()) % partitions)


class Final:
    """Rows per table, one per key (the last written wins, as FINAL reads them).

    `profile_traits` rows of an erased profile id are left out of the comparison: the erasure
    deletes them by profile id when it reaches the sink, and with shards a profile id renamed
    onto another shard and used again after its erasure can have its new rows written before
    or after that (README, "Traits": the next change writes the row again)."""

    def __init__(self):
        self.tables: dict[str, dict] = {name: {} for name in KEYS}
        self.stitched: dict[str, str] = {}
        self.identity_events: set = set()
        self.erased: set[str] = set()

    def add(self, out: Emitted) -> None:
        self.erased.update(ev["survivor"] for ev in out.identity if ev["kind"] == "forget")
        for name, key in KEYS.items():
            rows = self.tables[name]
            for row in getattr(out, name):
                clean = {k: v for k, v in row.items() if k not in WALL_CLOCK}
                at = tuple(clean[k] for k in key)
                if "version" in clean and at in rows and rows[at]["version"] > clean["version"]:
                    continue
                rows[at] = orjson.loads(orjson.dumps(clean))
        for tp in out.stitched:
            self.stitched[tp["event_id"]] = tp["profile_id"]
        for ev in out.identity:
            self.identity_events.add((ev["kind"], ev["survivor"], tuple(ev["absorbed"]),
                                      tuple(ev["identifiers"]), ev["event_id"]))

    def rows(self, name: str) -> list:
        rows = self.tables[name].values()
        if name == "traits":  # what `FINAL WHERE is_deleted = 0` shows of profiles not erased
            rows = [r for r in rows if not r["is_deleted"] and r["profile_id"] not in self.erased]
        return sorted(rows,
                      key=lambda r: orjson.dumps(r, option=orjson.OPT_SORT_KEYS))


def replayed(events: list[dict], **pipeline_args) -> tuple[Final, Pipeline]:
    """`parcours replay` of the events in file order: one source, then the end of input."""
    pipeline = Pipeline(**pipeline_args)
    final = Final()
    raws = [(orjson.dumps(e), "file", None, n) for n, e in enumerate(events, start=1)]
    good, dead = ingest_batch(raws, source_key=SOURCE, offset_key=OFFSET)
    assert not dead, dead
    final.add(pipeline.process(good))
    final.add(pipeline.end_of_input())
    return final, pipeline


class Worker:
    """The worker over `partitions` input partitions: ingest forwards records to the stitch log,
    the journey applies the log in batches (one worker at a time)."""

    def __init__(self, events: list[dict], partitions: int, **pipeline_args):
        self.partitions = partitions
        self.args = pipeline_args
        self.logs: list[list[bytes]] = [[] for _ in range(partitions)]
        self.produced = 0
        self.events = events
        self.read = [0] * partitions  # next offset each partition's ingest reads
        self.stitch: list = []  # touchpoints, and ("idle" | "resume", partition) control items
        self.applied = 0  # the journey's position in the stitch log: what its state holds
        self.holding: set[int] = set()  # partitions known to hold the frontier (not idle)
        self.stores: dict = {}
        self.final = Final()
        self.crashes = 0
        self.pipeline = self._start()

    def _start(self) -> Pipeline:
        return Pipeline(self.stores, sources=self.partitions, **self.args)

    # -- producers --------------------------------------------------------------------------------
    def produce(self, n: int) -> None:
        for event in self.events[self.produced:self.produced + n]:
            self.logs[partition_of(event, self.partitions)].append(orjson.dumps(event))
        self.produced = min(len(self.events), self.produced + n)

    # -- ingest -----------------------------------------------------------------------------------
    def available(self, p: int) -> int:
        return len(self.logs[p]) - self.read[p]

    def consume(self, p: int, n: int) -> None:
        """Ingest forwards the next `n` records of partition `p`; first, each partition not known
        to hold the frontier (reported idle, or any partition after a restart: an idle report in
        the log may be re-read) that has records again is reported active (ingest sees its
        high-water mark move in the fetch that brings the other partitions' newer records)."""
        for q in range(self.partitions):
            if q not in self.holding and self.available(q):
                self.holding.add(q)
                self.stitch.append(("resume", q))
        start = self.read[p]
        chunk = [(raw, "touchpoints", p, start + i)
                 for i, raw in enumerate(self.logs[p][start:start + n])]
        self.read[p] += len(chunk)
        good, dead = ingest_batch(chunk, source_key=SOURCE, offset_key=OFFSET)
        assert not dead, dead
        self.stitch.extend(good)

    def rebalance(self, p: int, back: int) -> None:
        """Partition `p` is given away and assigned back (a rebalance): ingest forgets what it
        noted of it (`Shell.forget_partitions`) and re-reads it from its last commit."""
        self.holding.discard(p)
        self.read[p] = max(0, self.read[p] - back)

    def idle(self, p: int) -> None:
        """Partition `p` was read to its end: the worker's idle report goes through the log."""
        self.holding.discard(p)
        self.stitch.append(("idle", p))
        self.end_batch()

    # -- the journey ------------------------------------------------------------------------------
    def _run(self) -> None:
        """The log from the journey's position, control items in their place (as `Shell._run`).
        Items are copied: the pipeline takes ownership of what it is given."""
        run: list[dict] = []
        start = max(self.applied, self.pipeline.watermark.position + 1)  # skip what was applied
        for item in self.stitch[start:] + [None]:
            if isinstance(item, dict):
                run.append(dict(item))
                continue
            if run:
                self.final.add(self.pipeline.process(run, flush=False))
                run = []
            if item is None:
                break
            if item[0] == "idle":
                self.final.add(self.pipeline.idle(str(item[1]), flush=False))
            else:
                self.pipeline.resume(str(item[1]))
        self.pipeline.watermark.set_position(len(self.stitch) - 1)

    def end_batch(self) -> None:
        """The journey runs what is new in the log: outputs first, then the state (changelog)."""
        self._run()
        self.pipeline.flush()
        self.applied = len(self.stitch)

    def crash(self, stitch_back: int, ingest_back: list[int]) -> None:
        """kill -9 in the middle of a batch whose outputs went out: its state changes are lost and
        the tables are as the last batch left them. The new worker reads the log from the
        journey's last commit (`stitch_back` items before its position) and ingest re-reads each
        partition from its own last commit (`ingest_back[p]` records back), so records are
        delivered again; it reports idle partitions afresh."""
        self._run()  # its outputs were sent before the crash: they stay in the topics and tables
        for state in self.pipeline.states.values():
            state.discard()
        self.applied = max(0, self.applied - stitch_back)
        self.read = [max(0, r - back) for r, back in zip(self.read, ingest_back)]
        self.holding.clear()
        self.crashes += 1
        self.pipeline = self._start()

    def finish(self) -> Final:
        """Everything produced and read; every partition reported idle."""
        self.produce(len(self.events))
        for p in range(self.partitions):
            self.consume(p, self.available(p))
        self.end_batch()
        for p in range(self.partitions):
            self.idle(p)
        return self.final
