"""`parcours replay`: the stream's pipeline over a JSON-lines file, with no broker.

Same functions as the worker (`ingest_batch`, `Pipeline.process`, `table_rows`), in-memory state,
so a backfill gives what the stream gives. Reads the file in batches: memory stays flat in its size.
A batch's ClickHouse rows are converted at once and inserted on a thread while the next batch runs
(ClickHouse parses and writes them outside the GIL); at most one insert is in flight, and its
error stops the replay at the next batch. `run` is the command: its files checked, the rule pack
and ClickHouse opened, then one summary line printed.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

import orjson

from streams import config
from streams.cli.common import CliError, load_rules, open_sink
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.worker import gc_tuning

if TYPE_CHECKING:
    from streams.pipeline import Emitted, Pipeline
# The pipeline, ingest and the outputs are imported by the functions that run them: building the
# `parcours` parser imports this module, and `parcours --help` need not load the whole core.

log = logging.getLogger("parcours.replay")

OUTPUT_FILES = ("triggers", "suppressions", "identity", "dead_letter", "attribution_credit",
                "late_events", "attribution_paths", "experiment_exposures", "audiences",
                "profile_traits")


@dataclass
class ReplayResult:
    lines: int = 0
    accepted: int = 0
    dead_lettered: int = 0
    counts: dict = field(default_factory=dict)
    seconds: float = 0.0
    out_dir: Path | None = None


def read_batches(path: Path, batch_size: int) -> Iterator[list[tuple[bytes, str, None, int]]]:
    """Batches of (raw bytes, source, partition None, line number); blank lines are skipped."""
    source = str(path)
    batch = []
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            batch.append((line, source, None, number))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


class _Writers:
    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.files: dict[str, IO[bytes]] = {name: open(out_dir / f"{name}.jsonl", "wb")
                                            for name in OUTPUT_FILES}

    def write(self, name: str, records) -> None:
        fh = self.files[name]
        for record in records:
            fh.write(orjson.dumps(record))
            fh.write(b"\n")

    def close(self) -> None:
        for fh in self.files.values():
            fh.close()


class _Inserts:
    """The sink's writes and flushes on one background thread, one batch at a time (a full table
    buffer flushes inside `write`, so both go to the thread)."""

    def __init__(self, sink):
        self.sink = sink
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="replay-insert")
        self.pending: Future | None = None

    def write(self, rows: dict[str, list[dict]]) -> None:
        self.wait()  # the previous batch is in ClickHouse (or its error is raised here)
        self.pending = self.pool.submit(self._insert, rows)

    def _insert(self, rows: dict[str, list[dict]]) -> None:
        for table, table_rows_ in rows.items():
            self.sink.write(table, table_rows_)
        self.sink.flush()

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Stop the thread once the insert in flight is done. Only reached with one in flight
        when the replay is already failing: that error is the one raised, this one is logged."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - see above
            log.exception("ClickHouse insert failed while the replay was stopping")
        finally:
            self.pool.shutdown()


def replay(path: Path, out_dir: Path, *, sink=None, batch_size: int = 5000,
           pipeline: Pipeline | None = None, preferences: Path | None = None,
           max_future_ms: int = DEFAULT_MAX_FUTURE_MS) -> ReplayResult:
    """Run the pipeline over `path`; write DIR/*.jsonl and, when `sink` is given, ClickHouse rows.
    `preferences`: a file of preference-centre records, applied first (as the worker's
    `preferences` topic would be). Events more than `max_future_ms` ahead of the clock are
    dead-lettered, as ingest does in the worker."""
    from streams.pipeline import Pipeline

    started = time.perf_counter()
    pipeline = pipeline or Pipeline()
    result = ReplayResult(out_dir=out_dir)
    writers = _Writers(out_dir)
    inserts = _Inserts(sink) if sink is not None else None
    sources = [(preferences, True)] if preferences else []
    try:
        for source, is_preferences in sources + [(path, False)]:
            for batch in read_batches(source, batch_size):
                _replay_batch(pipeline, batch, is_preferences, result, writers, inserts,
                              max_future_ms)
        # the end of the file is the end of the input: the events still held are processed
        _write_outputs(pipeline.end_of_input(), [], result, writers, inserts)
        writers.write("identity", pipeline.identity.export())
        if inserts is not None:
            inserts.wait()  # the last batch is in ClickHouse, or its error is raised here
    finally:
        writers.close()
        if inserts is not None:
            inserts.close()
    result.seconds = time.perf_counter() - started
    return result


def _replay_batch(pipeline: Pipeline, batch: list, is_preferences: bool, result: ReplayResult,
                  writers: _Writers, inserts: _Inserts | None, max_future_ms: int) -> None:
    """One batch of lines, as the worker's agents run one batch of messages."""
    from streams.ingest import OFFSET, SOURCE, ingest_batch, ingest_preferences

    result.lines += len(batch)
    if is_preferences:
        good, dead = ingest_preferences(batch, max_future_ms=max_future_ms)
    else:
        good, dead = ingest_batch(batch, source_key=SOURCE, offset_key=OFFSET,
                                  max_future_ms=max_future_ms)
    result.accepted += len(good)
    result.dead_lettered += len(dead)
    writers.write("dead_letter", dead)
    _write_outputs(pipeline.process(good), dead, result, writers, inserts)


def _write_outputs(out: Emitted, dead: list, result: ReplayResult, writers: _Writers,
                   inserts: _Inserts | None) -> None:
    writers.write("triggers", out.triggers)
    writers.write("suppressions", out.suppressions)
    writers.write("attribution_credit", out.credits)
    writers.write("late_events", out.late)
    writers.write("attribution_paths", out.paths)
    writers.write("experiment_exposures", out.exposures)
    writers.write("audiences", out.audiences)  # every record, an erasure's too (as the topic)
    writers.write("profile_traits", out.traits)
    for name, n in out.counts().items():
        result.counts[name] = result.counts.get(name, 0) + n
    if inserts is not None:
        from streams.worker.outputs import dead_letter_rows, table_rows

        rows = table_rows(out, int(time.time() * 1000))
        if dead:
            rows["dead_letters"] = dead_letter_rows(dead)
        inserts.write(rows)


def add_parser(sub) -> None:
    p = sub.add_parser("replay", help="the same pipeline over a JSON-lines file, no broker")
    p.add_argument("file")
    p.add_argument("--clickhouse", default=None,
                   help="ClickHouse URL (default PARCOURS_CLICKHOUSE_URL)")
    p.add_argument("--out", default="out/replay")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--rules", default=None,
                   help="rule pack YAML (default PARCOURS_RULES, else the shipped pack)")
    p.add_argument("--preferences", default=None,
                   help="preference-centre records (JSON lines), applied before the file")
    p.add_argument("--shards", type=int, default=0,
                   help="run the sharded journey (a sequencer and N shard cores, as the worker) "
                        "instead of the sequential pipeline; the outputs are the same")
    p.set_defaults(func=run)


def run(args) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"replay: no such file: {path}")
    if args.preferences and not Path(args.preferences).is_file():
        raise CliError(f"replay: no such file: {args.preferences}")
    settings = config.load(clickhouse_url=args.clickhouse)
    gc_tuning.tune()
    from streams.pipeline import Pipeline
    from streams.shards import LocalShards

    rules = load_rules(args.rules or settings.rules_file)
    if args.shards < 0:
        raise CliError(f"replay: --shards {args.shards}: expected 0 (sequential) or more")
    pipeline = (LocalShards(args.shards, rules=rules,
                            attribution_config=config.attribution_config(settings))
                if args.shards else
                Pipeline(rules=rules, attribution_config=config.attribution_config(settings)))
    sink = open_sink(settings.clickhouse_url)
    try:
        result = replay(path, Path(args.out), sink=sink, batch_size=args.batch_size,
                        pipeline=pipeline,
                        preferences=Path(args.preferences) if args.preferences else None,
                        max_future_ms=settings.max_future_ms)
    finally:
        sink.close()
    rate = result.lines / result.seconds if result.seconds else 0.0
    print(f"replayed {result.lines} lines in {result.seconds:.2f} s ({rate:,.0f}/s): "
          f"{result.accepted} accepted, {result.dead_lettered} dead-lettered, "
          f"{result.counts.get('credits', 0)} credit rows, "
          f"{result.counts.get('identity', 0)} identity events, "
          f"{result.counts.get('triggers', 0)} triggers, "
          f"{result.counts.get('suppressions', 0)} suppressions, "
          f"{result.counts.get('audiences', 0)} audience entries and exits, "
          f"{result.counts.get('late', 0)} late events -> {args.out}/")
    return 0
