"""`parcours replay`'s ClickHouse inserts on their thread: order, completion, and errors."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

import orjson
import pytest

from sinks.writer import SinkError
from streams import simulate
from streams.cli.replay import replay

START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)


class _RecordingSink:
    """Stands in for ClickHouseSink's interface (write, flush) to observe the replay's calls;
    flush number `fail_at` raises as a ClickHouse outage would."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.flushed: list[int] = []  # touchpoint rows per flush, in order
        self.buffered = 0
        self.lock = threading.Lock()

    def write(self, table: str, rows: list) -> None:
        with self.lock:
            if table == "touchpoints":
                self.buffered += len(rows)

    def flush(self) -> None:
        with self.lock:
            if self.fail_at is not None and len(self.flushed) + 1 == self.fail_at:
                raise SinkError("ClickHouse is down")
            self.flushed.append(self.buffered)
            self.buffered = 0


@pytest.fixture
def journeys(tmp_path):
    path = tmp_path / "journeys.jsonl"
    events = simulate.Population(profiles=120, seed=3, start=START).events()
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def test_every_batch_reaches_the_sink_in_order_before_replay_returns(journeys, tmp_path):
    sink = _RecordingSink()
    result = replay(journeys, tmp_path / "out", sink=sink, batch_size=200)
    assert sum(sink.flushed) == result.accepted
    # one flush per batch, the last one included, and one for the end of input (held events)
    assert len(sink.flushed) == -(-result.lines // 200) + 1
    assert not [t for t in threading.enumerate() if t.name.startswith("replay-insert")]


def test_an_insert_error_stops_the_replay(journeys, tmp_path):
    sink = _RecordingSink(fail_at=2)
    with pytest.raises(SinkError, match="ClickHouse is down"):
        replay(journeys, tmp_path / "out", sink=sink, batch_size=200)
    assert len(sink.flushed) == 1  # the first batch is in; nothing after the failed one
    assert not [t for t in threading.enumerate() if t.name.startswith("replay-insert")]


def test_replay_with_shards_writes_what_the_sequential_replay_writes(journeys, tmp_path):
    """`parcours replay --shards N`: the sequencer and N shard cores in one process give the
    sequential pipeline's files (rows compared as sets: the shards emit them in shard order)."""
    from streams.cli import main

    def files(out):
        wall = {"updated_at", "computed_at", "ingested_at"}
        got = {}
        for p in sorted(out.glob("*.jsonl")):
            rows = [orjson.loads(line) for line in p.read_bytes().splitlines()]
            if p.name == "profile_traits.jsonl":  # a row per batch that changed a profile: the
                # batches differ, the last row of each record (what FINAL keeps) does not
                rows = list({(r["profile_id"], r["created_by"]): r for r in rows}.values())
            got[p.name] = sorted(orjson.dumps({k: v for k, v in r.items() if k not in wall},
                                              option=orjson.OPT_SORT_KEYS) for r in rows)
        return got

    for name, extra in (("sequential", []), ("shards", ["--shards", "3"])):
        assert main(["replay", str(journeys), "--out", str(tmp_path / name), "--batch-size", "97",
                     "--clickhouse", f"chdb://{tmp_path / 'ch'}",  # one chDB a process
                     *extra]) == 0
    sequential, sharded = files(tmp_path / "sequential"), files(tmp_path / "shards")
    assert sequential.keys() == sharded.keys() and sequential["attribution_credit.jsonl"]
    assert sequential == sharded
