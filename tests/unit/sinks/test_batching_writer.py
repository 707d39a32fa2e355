"""The batching writer's policy, without a database: flush on size and age, retries with backoff,
backpressure, option checks."""
from __future__ import annotations

import pytest

from sinks.writer import BackpressureError, BatchingWriter, SinkError


class FlakyWriter(BatchingWriter):
    """A writer whose first `failures` writes fail; records what was written and slept."""

    def __init__(self, failures: int, exc: Exception | None = None, **options):
        self.sleeps: list[float] = []
        options.setdefault("sleep", self.sleeps.append)
        super().__init__("attribution_credit", **options)
        self.failures = failures
        self.exc = exc or ConnectionError("connection reset by peer")
        self.calls: list[list] = []
        self.written: list = []

    def _write(self, rows):
        self.calls.append(list(rows))
        if self.failures:
            self.failures -= 1
            raise self.exc
        self.written.extend(rows)


# ---- batching base: flush policy, retries, backpressure ---------------------------------------

def test_flushes_on_size_and_on_age():
    now = [0.0]
    writer = FlakyWriter(0, max_rows=3, max_age_s=1.0, clock=lambda: now[0])
    writer.add([1, 2])
    assert writer.written == [] and writer.maybe_flush() == 0
    writer.add([3])  # size reached
    assert writer.written == [1, 2, 3]
    writer.add([4])
    now[0] = 0.9
    assert writer.maybe_flush() == 0
    now[0] = 1.0  # oldest pending row is max_age_s old
    assert writer.maybe_flush() == 1 and writer.written == [1, 2, 3, 4]
    assert (writer.rows_written, writer.batches, writer.errors) == (4, 2, 0)


def test_retry_then_success_with_exponential_backoff():
    flushed, failed = [], []
    writer = FlakyWriter(2, max_rows=100, base_delay_s=0.1, max_delay_s=10,
                         on_flush=lambda table, rows, s: flushed.append((table, rows)),
                         on_error=lambda table, exc: failed.append((table, type(exc).__name__)))
    writer.add(list(range(10)))
    assert writer.flush() == 10
    assert writer.sleeps == [0.1, 0.2]
    assert len(writer.calls) == 3 and all(call == list(range(10)) for call in writer.calls)
    assert (writer.rows_written, writer.batches, writer.errors, writer.pending) == (10, 1, 2, 0)
    assert flushed == [("attribution_credit", 10)]
    assert failed == [("attribution_credit", "ConnectionError")] * 2


def test_failure_keeps_rows_buffered_and_resends_the_same_batches():
    writer = FlakyWriter(10**6, max_rows=4, max_attempts=3, max_age_s=3600)
    # due: the automatic flush fails, add() records it and keeps the rows
    writer.add(list(range(6)))
    assert writer.pending == 6 and writer.errors == 3 and writer.sleeps == [0.2, 0.4]
    with pytest.raises(SinkError) as info:  # an explicit flush raises
        writer.flush()
    assert str(info.value) == ("sink 'attribution_credit': writing 4 rows failed after "
                               "3 attempt(s): connection reset by peer")
    assert isinstance(info.value.__cause__, ConnectionError)
    assert writer.pending == 6 and writer.errors == 6
    assert all(call == [0, 1, 2, 3] for call in writer.calls)
    writer.failures = 0  # the database is back
    assert writer.flush() == 6
    assert writer.calls[-2:] == [[0, 1, 2, 3], [4, 5]]  # the failed batch is sent again, unchanged
    assert writer.written == list(range(6)) and writer.pending == 0


def test_errors_that_a_retry_cannot_fix_are_not_retried():
    writer = FlakyWriter(1, exc=TypeError("bad value"), max_rows=10)
    writer._retryable = lambda exc: not isinstance(exc, TypeError)
    writer.add([1])
    with pytest.raises(SinkError, match=r"failed \(not retryable\): bad value"):
        writer.flush()
    assert writer.sleeps == [] and writer.pending == 1


def test_backpressure_at_the_limit():
    now = [0.0]
    writer = FlakyWriter(10**6, max_rows=10, max_pending=30, max_attempts=2, max_delay_s=5,
                         clock=lambda: now[0])
    for _ in range(3):
        writer.add(list(range(10)))  # automatic flushes fail: errors recorded, rows kept, no raise
    assert writer.pending == 30 and writer.errors == 2  # one failed flush, then a hold-off
    with pytest.raises(BackpressureError) as info:
        writer.add([1])
    assert str(info.value) == (
        "sink 'attribution_credit' has 30 rows pending and cannot take 1 more (limit 30): "
        "the database is not keeping up; last error: connection reset by peer")
    # the offered row was not taken
    assert isinstance(info.value, RuntimeError) and writer.pending == 30
    writer.failures = 0
    now[0] = 10.0  # after the hold-off, the database is back: room is made again
    writer.add([1])
    assert writer.pending == 1 and writer.rows_written == 30


def test_writer_option_checks():
    with pytest.raises(ValueError, match="max_pending"):
        FlakyWriter(0, max_rows=10, max_pending=5)
    with pytest.raises(ValueError, match="max_rows"):
        FlakyWriter(0, max_rows=0)
