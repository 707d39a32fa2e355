"""ClickHouse sink benchmark: chDB insert rows/s per table, the writer against chDB's own insert.

Rows are what the pipeline hands the sink: simulated journeys through `ingest_batch`,
`Pipeline.process` and `table_rows` (plus dead letters from malformed records and late events
re-sent behind the watermark), repeated with a fresh key per copy up to BENCH_CH_ROWS (default
30,000) rows per table, and BENCH_CH_PATHS (default 1,000,000) rows for attribution_paths.

For each table, in the same run and the same chDB directory (the table truncated before each):
- floor (baseline): `client.raw_insert` of the same rows already encoded as the writer sends them
  (JSONCompactColumns), i.e. what ClickHouse itself costs;
- `ClickHouseTableWriter`: dict rows in, checked, buffered, encoded, token, inserted;
- the previous writer (`to_row` per row, JSONCompactEachRow, token over the rows' orjson), kept
  here as `LegacyTableWriter`; for attribution_paths on BENCH_CH_LEGACY_PATHS (default 100,000)
  rows, as it runs at a fraction of the new one's rate.
Then the writer on attribution_paths at several chunk sizes (`max_rows`).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from rich.table import Table as RichTable

from sinks.tables import TABLES, Table
from sinks.writer import BatchingWriter, ClickHouseTableWriter, Columns

# the column made unique in each copy of a row (a key column: copies stay distinct rows)
UNIQUE = {"touchpoints": "event_id", "identity_map": "identifier", "identity_events": "event_id",
          "triggers": "trigger_id", "suppressions": "suppression_id",
          "attribution_credit": "conversion_id", "dead_letters": "original",
          "late_events": "event_id", "attribution_paths": "path_id",
          "experiment_exposures": "trigger_id", "profile_traits": "profile_id",
          "audience_membership": "record_id"}
CHUNKS = (5_000, 20_000, 50_000, 100_000)


class LegacyTableWriter(BatchingWriter):
    """The writer this benchmark replaces, as it was: a tuple per row (`Table.to_row`),
    JSONCompactEachRow, sha256 over the orjson of the rows' non-volatile columns."""

    def __init__(self, client, table: Table, **options):
        super().__init__(table.name, **options)
        self.client, self.table = client, table
        self.times = {i for i, (_, kind) in enumerate(table.columns) if kind == "time"}
        self.keep = table.token_positions

    def _prepare(self, rows):
        return [self.table.to_row(row) for row in rows]

    def _write(self, rows):
        kept = [tuple(row[i] for i in self.keep) for row in rows]
        digest = hashlib.sha256(self.table.name.encode() + b"\x00")
        digest.update(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS))
        times = self.times
        block = b"\n".join(orjson.dumps(tuple(v / 1000 if i in times else v
                                              for i, v in enumerate(row))) for row in rows)
        self.client.raw_insert(self.table.name, list(self.table.column_names),
                               insert_block=block, fmt="JSONCompactEachRow",
                               settings={"insert_deduplication_token": digest.hexdigest()})


def pipeline_rows(events: int = 20_000) -> dict[str, list[dict]]:
    """Rows per table from the real pipeline over simulated journeys."""
    from datetime import datetime, timezone

    from streams import simulate
    from streams.ingest.normalise import ingest_batch
    from streams.pipeline import Pipeline
    from streams.simulate.malformed import malformed_events
    from streams.worker.outputs import dead_letter_rows, table_rows

    start = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
    raws = [orjson.dumps(e) for e in simulate.Population(profiles=max(10, events // 12), seed=7,
                                                         start=start).events()][:events]
    raws += malformed_events(max(10, events // 20), seed=7)
    pipeline = Pipeline()
    rows: dict[str, list[dict]] = {name: [] for name in TABLES}
    now = int(time.time() * 1000)
    for i in range(0, len(raws), 2000):
        good, dead = ingest_batch([(r, "touchpoints", 0, i + j)
                                   for j, r in enumerate(raws[i:i + 2000])])
        for table, got in table_rows(pipeline.process(good), now).items():
            rows[table].extend(got)
        rows["dead_letters"].extend(dead_letter_rows(dead))
    early = [orjson.loads(r) for r in raws[:2000:2]]  # re-sent with new ids, behind the watermark
    for e in early:
        e["event_id"] = f"{e['event_id']}-resent"
    good, _ = ingest_batch([(orjson.dumps(e), "touchpoints", 0, j) for j, e in enumerate(early)])
    for table, got in table_rows(pipeline.process(good), now).items():
        rows[table].extend(got)
    return rows


def copies(rows: list[dict], column: str, n: int) -> list[dict]:
    """`n` rows cycling over `rows`, the `column` of each copy made unique."""
    out = []
    for k in range(n):
        row = rows[k % len(rows)]
        out.append({**row, column: f"{row[column]}~{k}"})
    return out


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _measure(client, table: Table, rows: list[dict], legacy_rows: list[dict]) -> dict:
    truncate = lambda: client.command(f"TRUNCATE TABLE {table.name}")  # noqa: E731
    options = {"max_rows": 50_000, "max_pending": max(len(rows), 50_000), "max_age_s": 3600}
    writer = ClickHouseTableWriter(client, table, **options)
    chunks = [writer.encode_columns(Columns(table.to_columns(rows[i:i + 50_000])))
              for i in range(0, len(rows), 50_000)]  # the floor's payload, encoded beforehand
    truncate()
    floor_s = _timed(lambda: [client.raw_insert(
        table.name, list(table.column_names), insert_block=b"[" + b",".join(parts) + b"]",
        fmt=ClickHouseTableWriter.FORMAT, settings={"insert_deduplication_token": f"floor-{i}"})
        for i, parts in enumerate(chunks)])
    truncate()
    new_s = _timed(lambda: (writer.add(rows), writer.flush()))
    landed = int(client.command(f"SELECT count() FROM {table.name}"))
    truncate()
    legacy = LegacyTableWriter(client, table, **options)
    old_s = _timed(lambda: (legacy.add(legacy_rows), legacy.flush()))
    truncate()
    return {"rows": len(rows), "landed": landed, "floor_per_s": len(rows) / floor_s,
            "new_per_s": len(rows) / new_s, "old_rows": len(legacy_rows),
            "old_per_s": len(legacy_rows) / old_s}


def bench() -> dict:
    """Rows/s per table (floor, new writer, old writer) and the chunk sizes for paths."""
    from sinks.clickhouse import close, connect
    from sinks.migrations import migrate

    per_table = int(os.environ.get("BENCH_CH_ROWS", "30000"))
    n_paths = int(os.environ.get("BENCH_CH_PATHS", "1000000"))
    n_legacy = int(os.environ.get("BENCH_CH_LEGACY_PATHS", "100000"))
    started = time.perf_counter()
    base = pipeline_rows()
    out: dict = {"pipeline_rows": {k: len(v) for k, v in base.items()}, "tables": {}}
    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'ch'}")
        try:
            migrate(client)
            for name, table in TABLES.items():
                if not base[name]:
                    out["tables"][name] = None
                    continue
                n = n_paths if name == "attribution_paths" else per_table
                rows = copies(base[name], UNIQUE[name], n)
                legacy = rows[:n_legacy] if name == "attribution_paths" else rows
                out["tables"][name] = _measure(client, table, rows, legacy)
                if name == "attribution_paths":
                    sample = rows[:200_000]
                    out["chunks"] = {}
                    for size in CHUNKS:
                        writer = ClickHouseTableWriter(client, table, max_rows=size,
                                                       max_pending=max(size, len(sample)),
                                                       max_age_s=3600)
                        client.command(f"TRUNCATE TABLE {name}")
                        seconds = _timed(lambda: (writer.add(sample), writer.flush()))
                        out["chunks"][size] = len(sample) / seconds
                del rows, legacy
        finally:
            close(client)
    out["seconds"] = time.perf_counter() - started
    return out


def report(result: dict) -> RichTable:
    """The result as a table: rows/s per table and the ratios to chDB's own insert."""
    table = RichTable(title="ClickHouse sink: chDB inserts per table, rows/s (baseline: chDB "
                            "inserting the same rows pre-encoded)")
    for col in ("table", "rows", "chDB floor", "writer", "writer / floor", "previous writer",
                "previous / floor", "speed-up"):
        table.add_column(col, justify="left" if col == "table" else "right")
    for name, r in result["tables"].items():
        if r is None:
            table.add_row(name, "0 from the pipeline", "", "", "", "", "", "")
            continue
        table.add_row(name, f"{r['rows']:,}", f"{r['floor_per_s']:,.0f}", f"{r['new_per_s']:,.0f}",
                      f"{r['new_per_s'] / r['floor_per_s']:.2f}",
                      f"{r['old_per_s']:,.0f}" + (f" ({r['old_rows']:,})"
                                                  if r["old_rows"] != r["rows"] else ""),
                      f"{r['old_per_s'] / r['floor_per_s']:.2f}",
                      f"{r['new_per_s'] / r['old_per_s']:.1f}x")
    if result.get("chunks"):
        sizes = ", ".join(f"{size:,}: {rate:,.0f}/s" for size, rate in result["chunks"].items())
        table.caption = f"attribution_paths by max_rows (200,000 rows): {sizes}"
    return table


if __name__ == "__main__":
    from rich.console import Console

    from streams.worker import gc_tuning

    gc_tuning.tune()
    res = bench()
    Console(width=130).print(report(res))
    print(f"{res['seconds']:.1f} s; pipeline rows: {res['pipeline_rows']}")
