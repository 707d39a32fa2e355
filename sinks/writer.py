"""Batching writers: one base with size/age flushes, retries and an explicit backpressure error, and
the ClickHouse sink built on it.

Delivery contract (at-least-once upstream, so every write must be safe to repeat):
- `flush()` writes the buffer in chunks of `max_rows` taken from its head. A chunk that fails every
  attempt stays at the head of the buffer, so the next flush sends exactly the same chunk again.
- `ClickHouseTableWriter` sends each chunk with `insert_deduplication_token = sha256(content)`: the
  same chunk sent twice (a retry after a timeout whose insert did land, a re-flush) is dropped by
  ClickHouse. Rows replayed after a crash arrive in other chunks; the tables' ReplacingMergeTree
  keys collapse those (read with FINAL).
- `add()` never blocks on a broken database for long and never grows without bound: when an
  automatic flush fails it records the error (counters, `on_error`, `last_error`) and keeps the
  rows; once the buffer would exceed `max_pending` it refuses new rows with `BackpressureError`.

Not thread-safe by itself: `ClickHouseSink` serialises access with a lock (the Faust agent calls it
through `asyncio.to_thread`).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from clickhouse_connect.driver.exceptions import DataError, ProgrammingError

from sinks.tables import TABLES, Table
from streams.errors import ServiceError

log = logging.getLogger(__name__)

OnFlush = Callable[[str, int, float], None]
OnError = Callable[[str, BaseException], None]


class SinkError(ServiceError):
    """Rows could not be written; they are still buffered. The message is one line."""


class BackpressureError(SinkError):
    """The buffer is full because the database is not keeping up; the offered rows were not
    taken."""


def one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BatchingWriter:
    """Buffers rows and writes them in batches through `_write` (subclasses implement it).

    Flushes when `max_rows` are pending or the oldest pending row is older than `max_age_s`
    (checked by `add` and `maybe_flush`). Each batch is tried `max_attempts` times with exponential
    backoff (`base_delay_s`, doubling, capped at `max_delay_s`); `sleep` and `clock` are injectable.
    """

    def __init__(self, name: str, *, max_rows: int = 5000, max_age_s: float = 1.0,
                 max_pending: int = 200_000, max_attempts: int = 5, base_delay_s: float = 0.2,
                 max_delay_s: float = 5.0, on_flush: OnFlush | None = None,
                 on_error: OnError | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if max_rows < 1 or max_attempts < 1:
            raise ValueError("max_rows and max_attempts must be at least 1")
        if max_pending < max_rows:
            raise ValueError(f"max_pending ({max_pending}) must be at least max_rows ({max_rows})")
        if max_age_s < 0 or base_delay_s < 0 or max_delay_s < 0:
            raise ValueError("max_age_s, base_delay_s and max_delay_s must not be negative")
        self.name = name
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.on_flush = on_flush
        self.on_error = on_error
        self._sleep = sleep
        self._clock = clock
        self._buffer: list = []
        self._oldest_at: float | None = None  # clock() when the oldest pending row was added
        self._hold_until = 0.0  # after a failed automatic flush, wait before trying again
        self.rows_written = 0
        self.batches = 0
        self.errors = 0
        self.last_error: BaseException | None = None

    # ---- to implement --------------------------------------------------

    def _write(self, rows: list) -> None:
        """Write one batch; raise on failure. Must be safe to call again with the same rows."""
        raise NotImplementedError

    def _prepare(self, rows: Iterable) -> list:
        """Validate / convert offered rows before they are buffered (default: as they are)."""
        return list(rows)

    def _retryable(self, exc: BaseException) -> bool:
        """False for errors that another attempt cannot fix (bad data, programming errors)."""
        return True

    # ---- public --------------------------------------------------------

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def add(self, rows: Iterable) -> None:
        """Buffer rows, flushing when due. Raises BackpressureError (rows not taken) when full,
        ValueError (nothing taken) when `_prepare` refuses a row."""
        prepared = self._prepare(rows)
        if not prepared:
            self._auto_flush()
            return
        if len(self._buffer) + len(prepared) > self.max_pending:
            self._auto_flush(force=True)
            if len(self._buffer) + len(prepared) > self.max_pending:
                cause = f"; last error: {one_line(self.last_error)}" if self.last_error else ""
                raise BackpressureError(
                    f"sink {self.name!r} has {len(self._buffer)} rows pending and cannot take "
                    f"{len(prepared)} more (limit {self.max_pending}): the database is not "
                    f"keeping up{cause}"
                )
        if not self._buffer:
            self._oldest_at = self._clock()
        self._buffer.extend(prepared)
        self._auto_flush()

    def due(self) -> bool:
        if not self._buffer:
            return False
        if len(self._buffer) >= self.max_rows:
            return True
        return self._oldest_at is not None and self._clock() - self._oldest_at >= self.max_age_s

    def maybe_flush(self) -> int:
        """Flush when due (size or age); return the rows written. Raises SinkError like `flush`."""
        if self.due() and self._clock() >= self._hold_until:
            return self.flush()
        return 0

    def flush(self) -> int:
        """Write every pending row; return how many were written.

        Raises SinkError (cause chained) when a batch failed every attempt: that batch and the rows
        after it stay buffered, the batches before it are written.
        """
        written = 0
        while self._buffer:
            batch = self._buffer[: self.max_rows]
            self._write_with_retries(batch)
            del self._buffer[: len(batch)]
            written += len(batch)
        self._oldest_at = None
        self._hold_until = 0.0
        return written

    def stats(self) -> dict[str, Any]:
        return {"pending": self.pending, "rows_written": self.rows_written, "batches": self.batches,
                "errors": self.errors}

    # ---- internals -----------------------------------------------------

    def _auto_flush(self, force: bool = False) -> None:
        """Flush from `add`: failures are recorded, not raised (the rows stay buffered)."""
        if not (force or self.due()) or not self._buffer or self._clock() < self._hold_until:
            return
        try:
            self.flush()
        except SinkError as exc:
            self._hold_until = self._clock() + self.max_delay_s
            log.warning("%s; %d rows kept, next automatic attempt in %.1f s",
                        exc, len(self._buffer), self._hold_until - self._clock())

    def _write_with_retries(self, batch: list) -> None:
        for attempt in range(1, self.max_attempts + 1):
            started = self._clock()
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001 - any failure of the database call is retried
                self.errors += 1
                self.last_error = exc
                self._notify(self.on_error, self.name, exc)
                retryable = self._retryable(exc)
                if attempt == self.max_attempts or not retryable:
                    how = f"after {attempt} attempt(s)" if retryable else "(not retryable)"
                    raise SinkError(f"sink {self.name!r}: writing {len(batch)} rows failed {how}: "
                                    f"{one_line(exc)}") from exc
                delay = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
                log.info("sink %r: attempt %d/%d failed (%s); retrying in %.2f s",
                         self.name, attempt, self.max_attempts, one_line(exc, 200), delay)
                self._sleep(delay)
            else:
                self.rows_written += len(batch)
                self.batches += 1
                self.last_error = None
                self._notify(self.on_flush, self.name, len(batch), self._clock() - started)
                return

    @staticmethod
    def _notify(callback: Callable | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - a metrics callback must never break writes
            log.exception("sink callback %r failed", callback)


def dedup_token(table: str, parts: Iterable[bytes]) -> str:
    """sha256 over the table name and the given encoded columns, in order."""
    digest = hashlib.sha256(table.encode())
    for part in parts:
        digest.update(b"\x00")
        digest.update(part)
    return digest.hexdigest()


class Columns:
    """Rows held column by column: one list per column, all of the same length.

    The buffer of a `ClickHouseTableWriter`, with exactly the list operations `BatchingWriter`
    uses on its buffer: `len`, `extend`, a head slice `[:n]` and `del [:n]`. Holding columns, not a
    tuple per row, keeps the buffer free of per-row objects (nothing for the garbage collector to
    walk) and the insert free of a transposition."""

    __slots__ = ("columns", "rows")

    def __init__(self, columns: list[list]):
        self.columns = columns
        self.rows = len(columns[0]) if columns else 0

    def __len__(self) -> int:
        return self.rows

    def extend(self, other: "Columns") -> None:
        for mine, theirs in zip(self.columns, other.columns):
            mine.extend(theirs)
        self.rows += other.rows

    def __getitem__(self, part: slice) -> "Columns":
        return Columns([column[_head(part)] for column in self.columns])

    def __delitem__(self, part: slice) -> None:
        head = _head(part)
        for column in self.columns:
            del column[head]
        self.rows = len(self.columns[0]) if self.columns else 0


def _head(part: slice) -> slice:
    if not isinstance(part, slice) or part.start not in (None, 0) or part.step is not None:
        raise TypeError("Columns supports only head slices ([:n])")
    return part


class ClickHouseTableWriter(BatchingWriter):
    """Batches dict rows for one table (described by `sinks.tables.Table`) into ClickHouse.

    Rows are checked and converted when added (`Table.to_columns`, column by column) and buffered
    as `Columns`. Each batch is sent column-oriented as JSONCompactColumns (one orjson call per
    column; ClickHouse parses it in C++) with `insert_deduplication_token` = sha256 of the table
    name and the encoded non-volatile columns: one encoding serves the token and the payload.
    """

    FORMAT = "JSONCompactColumns"

    def __init__(self, client, table: Table | str, **options: Any):
        self.table = TABLES[table] if isinstance(table, str) else table
        super().__init__(self.table.name, **options)
        self._buffer = Columns([[] for _ in self.table.columns])
        self.client = client
        self._column_names = list(self.table.column_names)
        self._times = frozenset(i for i, (_, kind) in enumerate(self.table.columns)
                                if kind == "time")
        self._optional_times = frozenset(i for i, (_, kind) in enumerate(self.table.columns)
                                         if kind == "time?")
        self._volatile = tuple(i not in self.table.token_positions
                               for i in range(len(self.table.columns)))

    def _prepare(self, rows: Iterable[Mapping[str, Any]]) -> Columns:
        return Columns(self.table.to_columns(rows))

    def _retryable(self, exc: BaseException) -> bool:
        return not isinstance(exc, (TypeError, ValueError, DataError, ProgrammingError))

    def _write(self, rows: Columns) -> None:
        parts = self.encode_columns(rows)
        token = dedup_token(self.table.name,
                            (part for part, volatile in zip(parts, self._volatile) if not volatile))
        self.client.raw_insert(self.table.name, self._column_names,
                               insert_block=b"[" + b",".join(parts) + b"]", fmt=self.FORMAT,
                               settings={"insert_deduplication_token": token})

    def encode_columns(self, rows: Columns) -> list[bytes]:
        """Each column as one JSON array: the parts of a JSONCompactColumns block. Time columns
        hold epoch ms and are sent as seconds with 3 decimals, which ClickHouse reads exactly into
        DateTime64(3) (None, of a nullable time, as null)."""
        dumps = orjson.dumps
        optional = self._optional_times
        return [dumps([ms / 1000 for ms in column]) if i in self._times
                else dumps([None if ms is None else ms / 1000 for ms in column])
                if i in optional else dumps(column)
                for i, column in enumerate(rows.columns)]


class ClickHouseSink:
    """One `ClickHouseTableWriter` per table behind one lock; safe to call from several threads."""

    def __init__(self, client, tables: Mapping[str, Table] | None = None, **options: Any):
        self.client = client
        self._writers = {name: ClickHouseTableWriter(client, table, **options)
                         for name, table in (tables or TABLES).items()}
        self._lock = threading.Lock()
        self._closed = False

    def writer(self, table: str) -> ClickHouseTableWriter:
        try:
            return self._writers[table]
        except KeyError:
            raise ValueError(f"unknown table {table!r} "
                             f"(known: {', '.join(sorted(self._writers))})") from None

    def write(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Buffer rows for `table` (dicts keyed by column name); flushes when due.
        Raises BackpressureError when the table's buffer is full, ValueError for a malformed row."""
        writer = self.writer(table)
        with self._lock:
            self._check_open()
            writer.add(rows)

    def maybe_flush(self) -> int:
        """Flush the tables whose batch is due; call it periodically (e.g. every second).
        Returns 0 once the sink is closed, so a timer racing with shutdown is harmless."""
        with self._lock:
            if self._closed:
                return 0
            return self._each_locked(lambda w: w.maybe_flush())

    def flush(self) -> int:
        """Write everything pending in every table. Raises SinkError if any table failed
        (the others are still flushed)."""
        with self._lock:
            self._check_open()
            return self._each_locked(lambda w: w.flush())

    def close(self) -> None:
        """Flush and refuse further writes. The client is not closed (the caller owns it). On
        SinkError the sink stays open, with its rows, so the caller can retry."""
        with self._lock:
            if not self._closed:
                self._each_locked(lambda w: w.flush())
                self._closed = True

    def __enter__(self) -> "ClickHouseSink":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(w.pending for w in self._writers.values())

    def stats(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: w.stats() for name, w in self._writers.items()}

    def _each_locked(self, action: Callable[[BatchingWriter], int]) -> int:
        written = 0
        failures: list[SinkError] = []
        for writer in self._writers.values():
            try:
                written += action(writer)
            except SinkError as exc:
                failures.append(exc)
        if failures:
            extra = f" (and {len(failures) - 1} more table(s) failed)" if len(failures) > 1 else ""
            raise SinkError(f"{failures[0]}{extra}") from failures[0]
        return written

    def _check_open(self) -> None:
        if self._closed:
            raise SinkError("the ClickHouse sink is closed")
