"""`parcours worker` whose ClickHouse inserts are slow while a file says so: the throttle of the
sink-lag benchmark (bench/sink_lag.py), run as the worker's command.

A bench stand-in, not a test mock: the worker is the real one, its chDB client the real one,
wrapped at the ClickHouse client boundary so that each insert (`raw_insert`, `insert`,
`insert_arrow`, `insert_df`) first sleeps for the number of seconds written in the file named by
PARCOURS_BENCH_INSERT_DELAY_FILE, read again at each insert (file absent, empty or unreadable: no
delay), then runs. A ClickHouse server that is slow to acknowledge looks like this to the sink
stage: the insert succeeds, late. The sleep runs in the sink stage's insert thread
(`asyncio.to_thread`), holding no GIL, as a slow server's network wait would. Queries, DDL and
deletes are untouched. Each delayed insert logs one line (`bench throttle: ...`, at warning level,
so it shows at the worker's default log level) for the benchmark to count.
"""
from __future__ import annotations

import logging
import os
import sys
import time

import sinks.clickhouse

DELAY_FILE = os.environ.get("PARCOURS_BENCH_INSERT_DELAY_FILE", "")
INSERTS = ("raw_insert", "insert", "insert_arrow", "insert_df")
MARK = "bench throttle:"
log = logging.getLogger("parcours.bench")


def delay_s(path: str = DELAY_FILE) -> float:
    """The delay the file asks for now (0 when there is none)."""
    if not path:
        return 0.0
    try:
        with open(path, encoding="utf-8") as f:
            return max(0.0, float(f.read().strip() or 0))
    except (OSError, ValueError):
        return 0.0


class Slow:
    """A clickhouse-connect client whose inserts sleep `delay_s()` first."""

    def __init__(self, client):
        self._client = client

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name not in INSERTS:
            return attr

        def insert(*args, **kwargs):
            delay = delay_s()
            if delay:
                table = args[0] if args else kwargs.get("table", "?")
                log.warning("%s %s into %s delayed %g s", MARK, name, table, delay)
                time.sleep(delay)
            return attr(*args, **kwargs)
        return insert


def main() -> int:
    real_connect = sinks.clickhouse.connect
    sinks.clickhouse.connect = lambda url: Slow(real_connect(url))
    from streams.cli import main as cli

    return cli(["worker"])


if __name__ == "__main__":
    sys.exit(main())
