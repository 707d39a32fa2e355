"""Malformed records: realistic bad messages for dead-letter demos and tests."""
from __future__ import annotations

import gzip
import random
import struct
from datetime import datetime

import orjson

from streams.simulate.catalogue import SITE
from streams.simulate.clock import PARIS, iso_at

MALFORMED_KINDS = (
    "truncated_json",       # the producer's buffer was cut
    "missing_event_id",
    "naive_timestamp",      # ISO 8601 without an offset
    "wrong_types",          # ids as a string, event_time as a Mongo-export object, ...
    "binary_garbage",       # gzip'd payload or random bytes
    "avro_unknown_schema",  # Confluent wire format with a schema id nobody registered
    "not_an_object",        # a JSON array (a batch sent as one message), a bare string, null
    "empty_event_id",
    "csv_line",             # a CSV export piped to the topic
    "empty",                # a zero-length message (a tombstone on the wrong topic)
)
_UNKNOWN_SCHEMA_IDS = (4242, 90_001, 1_000_003)


def malformed_events(n: int, seed: int) -> list[bytes]:
    """`n` realistic bad records for dead-letter demos and tests.

    Record `i` is of kind `MALFORMED_KINDS[i % len(MALFORMED_KINDS)]`, so any `n >= 10` covers
    every kind. None of them is a valid JSON touchpoint. No record contains a newline byte, so
    they can be mixed into a JSONL file (`write_jsonl` accepts bytes) for `parcours replay`."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = random.Random(f"parcours-malformed:{seed}")
    base_ms = 1_763_622_900_000  # 2025-11-20T07:15:00Z
    out: list[bytes] = []
    for i in range(n):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        t = base_ms + i * 1_250 + rng.randrange(1_000)
        good = {"event_id": f"bad-{seed}-{i}", "event_time": iso_at(t, PARIS),
                "type": rng.choice(("page_view", "click", "impression", "email_open")),
                "channel": rng.choice(("web", "display", "email", "search")),
                "ids": {"cookie": f"c-{rng.getrandbits(64):016x}"},
                "context": {"url": f"{SITE}/suv-x?utm_source=autonews&utm_medium=display",
                            "tz": "Europe/Paris"},
                "properties": {"product_id": "suv-x"}}
        if kind == "truncated_json":
            raw = orjson.dumps(good)
            record = raw[: rng.randrange(1, len(raw) - 1)]
        elif kind == "missing_event_id":
            del good["event_id"]
            record = orjson.dumps(good)
        elif kind == "naive_timestamp":
            good["event_time"] = datetime.fromtimestamp(t // 1000, PARIS).replace(
                tzinfo=None).isoformat(timespec="seconds")
            record = orjson.dumps(good)
        elif kind == "wrong_types":
            variant = rng.randrange(4)
            if variant == 0:
                good["ids"] = good["ids"]["cookie"]
            elif variant == 1:
                good["event_time"] = {"$date": {"$numberLong": str(t)}}
            elif variant == 2:
                good["type"] = [good["type"]]
            else:
                good["context"] = good["context"]["url"]
            record = orjson.dumps(good)
        elif kind == "binary_garbage":
            if rng.random() < 0.5:
                # An application-level gzip of the JSON; 0x0a / 0x0d bytes are masked so the
                # record stays on one line of a JSONL file.
                record = _one_line(gzip.compress(orjson.dumps(good), mtime=0))
            else:
                record = bytes(rng.choice(_GARBAGE_BYTES) for _ in range(rng.randrange(8, 96)))
        elif kind == "avro_unknown_schema":
            schema_id = _UNKNOWN_SCHEMA_IDS[rng.randrange(len(_UNKNOWN_SCHEMA_IDS))]
            body = b"".join(_avro_string(s) for s in (good["event_id"], good["event_time"],
                                                      good["type"], good["channel"]))
            body += _avro_long(t)
            record = b"\x00" + struct.pack(">I", schema_id) + body
            record = _one_line(record)
        elif kind == "not_an_object":
            variant = rng.randrange(3)
            if variant == 0:
                second = dict(good, event_id=f"bad-{seed}-{i}-b")
                record = orjson.dumps([good, second])
            elif variant == 1:
                record = orjson.dumps(f"page_view {good['event_id']}")
            else:
                record = b"null"
        elif kind == "empty_event_id":
            good["event_id"] = ""
            record = orjson.dumps(good)
        elif kind == "csv_line":
            record = ",".join((good["event_id"], good["event_time"], good["type"],
                               good["channel"], good["ids"]["cookie"])).encode()
        else:
            record = b""
        out.append(record)
    return out


# Bytes that are neither JSON openers, whitespace, nor the Avro magic byte, nor line breaks.
_GARBAGE_BYTES = bytes(b for b in range(1, 256)
                       if b not in b"\n\r\t {[\"-0123456789tfn")


def _one_line(raw: bytes | bytearray) -> bytes:
    """Mask CR/LF bytes so a binary record stays on one line of a JSONL file."""
    return bytes(b ^ 0x20 if b in (0x0A, 0x0D) else b for b in raw)


def _avro_long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _avro_string(value: str) -> bytes:
    raw = value.encode()
    return _avro_long(len(raw)) + raw
