"""Record batches a consumer cannot read: one dead-letter stand-in, not a crash loop.

aiokafka (0.14) decompresses a fetched batch while `getmany` hands its records over. A batch it
cannot read (its codec's library missing, an unknown codec, a payload that does not decompress, a
CRC mismatch) raises from `getmany` with neither partition nor offset, and the records that call had
already taken, of that partition and of the others, are dropped while their positions move on: a
consumer that catches the error and goes on loses readable records, one that does not crash-loops on
the same batch at every restart.

`install()` wraps aiokafka's per-partition record iterator (`PartitionRecords._unpack_records`).
Through `getmany_readable`, an unreadable batch becomes one `ConsumerRecord` at the batch's last
offset whose value is an `UnreadableBatch` (a `DecodeError`: ingest makes it a dead letter of error
"unreadable", empty original, the batch's offsets in its reason), the partition's position moves
past the batch, and every readable record around it is handed over.
Elsewhere (Faust's consumer, on parcours's own topics) the error is raised as before. Either way one
log line names the topic, partition, offsets and reason, and parcours_unreadable_batches{topic,
partition} counts it. A CRC mismatch is fetched again first (`CRC_RETRIES` times: corruption on the
wire goes away, corruption on disk does not).
"""
from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager
from functools import partial

from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.structs import ConsumerRecord

from schemas.codec import DecodeError
from streams.worker import metrics

__all__ = ["CRC_RETRIES", "UnreadableBatch", "getmany_readable", "install", "is_unreadable",
           "unreadable_as_records"]

log = logging.getLogger("parcours.kafka")

CRC_RETRIES = 2
_AS_RECORDS = contextvars.ContextVar("parcours_unreadable_as_records", default=False)
_crc_failures: dict[tuple[object, int], int] = {}  # (partition, first offset) -> fetches failed


class UnreadableBatch(DecodeError):
    """The records at offsets `first_offset` to `next_offset` - 1 that could not be read (kind
    "unreadable"): the value of the one record standing for them, at the last of those offsets."""

    KINDS = DecodeError.KINDS | {"unreadable"}

    def __init__(self, reason: str, *, first_offset: int, next_offset: int) -> None:
        super().__init__("unreadable", reason)
        self.first_offset = first_offset
        self.next_offset = next_offset

    def __reduce__(self):
        return partial(type(self), first_offset=self.first_offset,
                       next_offset=self.next_offset), (self.reason,)


class _LastBatch:
    """The fetched records of one partition, remembering the batch handed out last."""

    __slots__ = ("records", "last")

    def __init__(self, records):
        self.records = records
        self.last = None

    def has_next(self) -> bool:
        return self.records.has_next()

    def next_batch(self):
        self.last = self.records.next_batch()
        return self.last


def install() -> None:
    """Wrap aiokafka's record iterator once per process (idempotent)."""
    # aiokafka's private record iterator: the one place a batch is decoded
    if getattr(PartitionRecords._unpack_records, "_parcours", False):  # noqa: SLF001
        return
    original = PartitionRecords._unpack_records  # noqa: SLF001

    def _unpack_records(self):
        self._records = batches = _LastBatch(self._records)
        while True:
            try:
                yield from original(self)  # reads self._records: the batches after the last one
                return
            except Exception as exc:
                if batches.last is None:
                    raise
                marker = _unreadable(self, batches.last, exc)
                if marker is None:  # a CRC mismatch fetched again: end, refetch from this batch
                    return
                if not _AS_RECORDS.get():
                    raise
                self.next_fetch_offset = marker.value.next_offset
                yield marker

    _unpack_records._parcours = True  # noqa: SLF001
    PartitionRecords._unpack_records = _unpack_records  # noqa: SLF001


def _unreadable(records: PartitionRecords, batch, exc: Exception) -> ConsumerRecord | None:
    tp = records._tp  # noqa: SLF001 - aiokafka's PartitionRecords keeps its partition private
    first = records.next_fetch_offset  # the first offset not handed over yet
    if isinstance(exc, CorruptRecordException):
        failures = _crc_failures.get((tp, first), 0)
        if failures < CRC_RETRIES:
            _crc_failures[(tp, first)] = failures + 1
            log.warning("CRC mismatch in %s[%d] at offset %d: fetching it again", tp.topic,
                        tp.partition, first)
            return None
        _crc_failures.pop((tp, first), None)
    end = max(batch.next_offset, first + 1)  # the header is all that is known of the batch
    text = str(exc).replace("\n", " ")
    reason = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
    metrics.UNREADABLE_BATCHES.labels(tp.topic, str(tp.partition)).inc()
    action = "skipped, see the dead letters" if _AS_RECORDS.get() else "raised to the consumer"
    log.error("unreadable record batch %s[%d] offsets %d-%d: %s (%s)", tp.topic, tp.partition,
              first, end - 1, reason, action)
    value = UnreadableBatch(f"record batch at offsets {first}-{end - 1} unreadable: {reason}",
                            first_offset=first, next_offset=end)
    return ConsumerRecord(topic=tp.topic, partition=tp.partition, offset=end - 1, timestamp=-1,
                          timestamp_type=0, key=None, value=value, checksum=None,
                          serialized_key_size=-1, serialized_value_size=-1, headers=())


@contextmanager
def unreadable_as_records():
    """Within this block (this task only), records are read as by `getmany_readable`."""
    token = _AS_RECORDS.set(True)
    try:
        yield
    finally:
        _AS_RECORDS.reset(token)


async def getmany_readable(consumer, *partitions, **kwargs) -> dict:
    """`consumer.getmany(...)` where an unreadable batch comes back as one record whose value is an
    `UnreadableBatch` (see `is_unreadable`) instead of an error. Needs `install()`."""
    with unreadable_as_records():
        return await consumer.getmany(*partitions, **kwargs)


def is_unreadable(record) -> bool:
    """True for the stand-in record of a batch that could not be read."""
    return isinstance(record.value, UnreadableBatch)
