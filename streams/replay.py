"""`parcours replay`: the stream's pipeline over a JSON-lines file, with no broker.

Same functions as the worker (`ingest_batch`, `Pipeline.process`, `table_rows`), in-memory state,
so a backfill gives what the stream gives. Reads the file in batches: memory stays flat in its size.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import orjson

from streams.ingest import ingest_batch
from streams.outputs import dead_letter_rows, table_rows
from streams.moments.feeds import NOT_A_SOURCE, preference_raw
from streams.pipeline import SOURCE, Pipeline

OUTPUT_FILES = ("triggers", "suppressions", "identity", "dead_letter", "attribution_credit",
                "late_events", "attribution_paths")


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


def replay(path: Path, out_dir: Path, *, sink=None, batch_size: int = 5000,
           pipeline: Pipeline | None = None, preferences: Path | None = None) -> ReplayResult:
    """Run the pipeline over `path`; write DIR/*.jsonl and, when `sink` is given, ClickHouse rows.
    `preferences`: a file of preference-centre records, applied first (as the worker's
    `preferences` topic would be)."""
    started = time.perf_counter()
    pipeline = pipeline or Pipeline()
    result = ReplayResult(out_dir=out_dir)
    writers = _Writers(out_dir)
    sources = [(preferences, True)] if preferences else []
    try:
        for source, is_preferences in sources + [(path, False)]:
            for batch in read_batches(source, batch_size):
                _replay_batch(pipeline, batch, is_preferences, result, writers, sink)
        writers.write("identity", pipeline.identity.export())
    finally:
        writers.close()
    result.seconds = time.perf_counter() - started
    return result


def _replay_batch(pipeline: Pipeline, batch: list, is_preferences: bool, result: ReplayResult,
                  writers: _Writers, sink) -> None:
    """One batch of lines, as the worker's agents run one batch of messages."""
    result.lines += len(batch)
    if is_preferences:
        good, dead = ingest_batch(batch, source_key=SOURCE, source=NOT_A_SOURCE,
                                  convert=preference_raw)
    else:
        good, dead = ingest_batch(batch)
    result.accepted += len(good)
    result.dead_lettered += len(dead)
    writers.write("dead_letter", dead)
    out = pipeline.process(good)
    writers.write("triggers", out.triggers)
    writers.write("suppressions", out.suppressions)
    writers.write("attribution_credit", out.credits)
    writers.write("late_events", out.late)
    writers.write("attribution_paths", out.paths)
    for name, n in out.counts().items():
        result.counts[name] = result.counts.get(name, 0) + n
    if sink is not None:
        rows = table_rows(out, int(time.time() * 1000))
        if dead:
            rows["dead_letters"] = dead_letter_rows(dead)
        for table, table_rows_ in rows.items():
            sink.write(table, table_rows_)
        sink.flush()
