"""Unreadable record batches, batch by batch: aiokafka's own record classes over batches built and
broken here (a payload that does not decompress, a CRC mismatch, a missing codec library). The
consumer-level behaviour against the broker is in tests/e2e/test_ingest_consumer.py."""
from __future__ import annotations

import logging
import pickle
import struct

import pytest
from aiokafka.consumer.fetcher import READ_UNCOMMITTED, PartitionRecords
from aiokafka.errors import CorruptRecordException, UnsupportedCodecError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import TopicPartition
from prometheus_client import REGISTRY

from streams.ingest.normalise import ingest_batch
from streams.kafka import unreadable_batches
from streams.kafka.unreadable_batches import (
    CRC_RETRIES,
    UnreadableBatch,
    install,
    is_unreadable,
    unreadable_as_records,
)

NONE, LZ4 = 0, 3
RECORDS_START = 61  # v2 batch header size: the records (or the compressed payload) start here
CRC_FROM = 21  # the CRC covers the batch from its attributes on
TP = TopicPartition("touchpoints", 0)

install()


def _batch(base: int, values: list[bytes], codec: int = NONE) -> bytearray:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    for delta, value in enumerate(values):
        builder.append(delta, timestamp=1_795_158_900_000, key=None, value=value, headers=[])
    buf = builder.build()
    struct.pack_into(">q", buf, 0, base)
    return buf


def _break_payload(buf: bytearray, *, fix_crc: bool) -> bytearray:
    buf[RECORDS_START] ^= 0xFF  # lz4: the frame's magic number; uncompressed: a record's length
    if fix_crc:  # a valid batch whose payload does not decompress
        struct.pack_into(">I", buf, 17, calc_crc32c(bytes(buf[CRC_FROM:])))
    return buf


def _three_batches(middle: bytearray) -> bytes:
    return bytes(_batch(0, [b"0", b"1", b"2"]) + middle + _batch(6, [b"6", b"7", b"8"]))


def _fetch(data: bytes, fetch_offset: int = 0) -> tuple[list, int]:
    """One fetch response's records as aiokafka's consumer hands them over, and the next offset."""
    records = PartitionRecords(TP, MemoryRecords(data), [], fetch_offset, None, None, True,
                               READ_UNCOMMITTED)
    return list(records), records.next_fetch_offset


def _counted() -> float:
    return REGISTRY.get_sample_value("parcours_unreadable_batches_total",
                                     {"topic": TP.topic, "partition": "0"}) or 0.0


def test_a_batch_that_does_not_decompress_stands_as_one_record_between_the_readable_ones(caplog):
    data = _three_batches(_break_payload(_batch(3, [b"3", b"4", b"5"], LZ4), fix_crc=True))
    before = _counted()
    with unreadable_as_records(), caplog.at_level(logging.ERROR, "parcours.kafka"):
        records, next_offset = _fetch(data)
    assert [r.value for r in records if not is_unreadable(r)] == [b"0", b"1", b"2",
                                                                  b"6", b"7", b"8"]
    (marker,) = [r for r in records if is_unreadable(r)]
    assert (marker.topic, marker.partition, marker.offset) == ("touchpoints", 0, 5)
    assert (marker.value.first_offset, marker.value.next_offset) == (3, 6)
    assert records.index(marker) == 3 and next_offset == 9
    assert _counted() == before + 1
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("unreadable record batch touchpoints[0] offsets 3-5: ")
    # ingest's dead letter for it: error "unreadable", the batch's last offset, nothing to keep
    _, (dead,) = ingest_batch([(marker.value, marker.topic, marker.partition, marker.offset)])
    assert (dead["error"], dead["topic"], dead["partition"], dead["offset"], dead["original"]) == \
        ("unreadable", "touchpoints", 0, 5, "")
    assert dead["reason"].startswith("record batch at offsets 3-5 unreadable: ")
    copy = pickle.loads(pickle.dumps(marker.value))
    assert (copy.reason, copy.first_offset, copy.next_offset) == (marker.value.reason, 3, 6)


def test_a_missing_codec_library_is_named_in_the_reason(monkeypatch):
    data = _three_batches(_batch(3, [b"3", b"4", b"5"], LZ4))
    monkeypatch.setattr("aiokafka.codec.has_lz4", lambda: False)  # as without cramjam
    with unreadable_as_records():
        records, _ = _fetch(data)
    (marker,) = [r for r in records if is_unreadable(r)]
    assert "Libraries for lz4 compression codec not found" in marker.value.reason
    assert isinstance(marker.value, UnreadableBatch) and len(records) == 7


def test_outside_getmany_readable_the_error_is_raised_with_its_position_logged(monkeypatch, caplog):
    """Faust's consumer (parcours's own topics) keeps aiokafka's behaviour: the error stops it."""
    data = _three_batches(_batch(3, [b"3", b"4", b"5"], LZ4))
    monkeypatch.setattr("aiokafka.codec.has_lz4", lambda: False)
    with caplog.at_level(logging.ERROR, "parcours.kafka"), pytest.raises(UnsupportedCodecError):
        _fetch(data)
    assert "touchpoints[0] offsets 3-5" in caplog.records[-1].getMessage()
    assert caplog.records[-1].getMessage().endswith("(raised to the consumer)")


def test_a_crc_mismatch_is_fetched_again_before_it_is_skipped(caplog):
    broken = _break_payload(_batch(3, [b"3", b"4", b"5"]), fix_crc=False)
    data = _three_batches(broken)
    with unreadable_as_records(), caplog.at_level(logging.WARNING, "parcours.kafka"):
        for _ in range(CRC_RETRIES):  # the fetch ends at the broken batch: the next starts there
            records, next_offset = _fetch(data)
            assert [r.value for r in records] == [b"0", b"1", b"2"] and next_offset == 3
        records, next_offset = _fetch(bytes(broken + _batch(6, [b"6", b"7", b"8"])), 3)
    (marker,) = records[:1]
    assert is_unreadable(marker) and marker.offset == 5 and next_offset == 9
    assert isinstance(marker.value, UnreadableBatch)
    assert "CorruptRecordException" in marker.value.reason
    assert [r.value for r in records[1:]] == [b"6", b"7", b"8"]
    assert sum("fetching it again" in r.getMessage() for r in caplog.records) == CRC_RETRIES
    assert not unreadable_batches._crc_failures
    with pytest.raises(CorruptRecordException):  # outside getmany_readable: retried, then raised
        for _ in range(CRC_RETRIES + 1):
            _fetch(data)
