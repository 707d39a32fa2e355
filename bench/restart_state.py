"""The state the restart section starts workers on (see bench/restart.py for how it is built):
a base state from the sequencer and the shard cores over a synthetic population, copies of it
under new keys, produced as framed changelog runs or written to the tables' local RocksDB."""
from __future__ import annotations

import asyncio
import itertools
from datetime import datetime, timezone
from pathlib import Path

import orjson

from bench.store_access import open_rocksdb
from streams import simulate
from streams.config import Settings, Topics
from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.kafka.clients import KafkaClients
from streams.moments.rules.loader import load_default
from streams.shards import SHARD_STORES, LocalShards
from streams.shards.sequencer import SEQUENCER_STORES
from streams.worker.journal import ABORT, CODES, COMMIT
from streams.worker.tables import TABLE_NAMES

START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
TOPICS = Topics()
SHARDS = Settings.__dataclass_fields__["journey_partitions"].default  # the worker's default
FRAME = 5000  # changelog records per framed run (~abort ... ~commit) produced for recovery
# per-profile stores of each table (the held events and the clocks are not copied)
COPIED = {"sequencer": [name for name in SEQUENCER_STORES if name not in ("pending", "clock")],
          "shards": [name for name in SHARD_STORES if name != "clock"]}
_ABORT, _COMMIT = orjson.dumps(ABORT), orjson.dumps(COMMIT)

Partition = tuple[str, int]  # (table: "sequencer" or "shards", partition)


def base_state(people: int) -> dict[Partition, list[tuple[bytes, bytes]]]:
    """The encoded records of every per-profile store after the sequencer and the shard cores
    ran over `people`, per table partition, keys as the journal views write them (the store's
    prefix, JSON)."""
    raws = [orjson.dumps(e) for e in simulate.Population(profiles=people, seed=1,
                                                         start=START).events()]
    stores: dict = {}
    journey = LocalShards(SHARDS, stores, rules=load_default())
    for i in range(0, len(raws), 5000):
        good, _ = ingest_batch([(r, TOPICS.touchpoints, 0, i + j)
                                for j, r in enumerate(raws[i:i + 5000])],
                               source_key=SOURCE, offset_key=OFFSET)
        journey.process(good)
    parts = {("sequencer", 0): stores["sequencer"],
             **{("shards", i): stores[f"shard-{i}"] for i in range(SHARDS)}}
    dumps = orjson.dumps
    return {(table, p): [(dumps(f"{CODES[name]}/{k}"), dumps(v))
                         for name in COPIED[table] for k, v in state[name].items()]
            for (table, p), state in parts.items()}


def profile_count(base) -> int:
    return sum(1 for key, _ in base[("sequencer", 0)] if key.startswith(b'"%s/' % CODES[
        "profiles"].encode()))


def earliest_timer(base) -> int | None:
    """The earliest deadline of the base state's timers (epoch ms; None without timers)."""
    prefix = b'"%s/' % CODES["timers"].encode()
    return min((orjson.loads(v)["at"] for (table, _p), recs in base.items() if table == "shards"
                for k, v in recs if k.startswith(prefix)), default=None)


def copies(records: list[tuple[bytes, bytes]], n: int):
    """`n` copies of `records` (the first unchanged), keys suffixed `~i`."""
    yield from records
    for i in range(1, n):
        suffix = b"~%d\"" % i
        for key, value in records:
            yield key[:-1] + suffix, value


def changelog_topic(app_id: str, table: str) -> str:
    return f"{app_id}-{TABLE_NAMES[table]}-changelog"


def framed(topic: str, partition: int, records, frame: int = FRAME):
    """The changelog records of one table partition as the worker writes them: runs of `frame`
    records between ~abort and ~commit (recovery applies committed runs only)."""
    it = iter(records)
    while True:
        run = list(itertools.islice(it, frame))
        if not run:
            return
        yield topic, _ABORT, b"1", partition
        for key, value in run:
            yield topic, key, value, partition
        yield topic, _COMMIT, b"1", partition


async def produce(bootstrap: str, records) -> int:
    producer = KafkaClients.at(bootstrap).producer(linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, partition=partition)
                   for topic, key, value, partition in records]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


def db_paths(data_dir: Path, app_id: str) -> dict[Partition, Path]:
    """Where the worker's RocksDB store keeps each table partition (as `Tables` declares them)."""
    from streams import config
    from streams.worker.app import faust_app
    from streams.worker.tables import Tables

    settings = config.load({}, data_dir=data_dir, app_id=app_id, kafka_url="kafka://127.0.0.1:1",
                           clickhouse_url="chdb:///unused", store="rocksdb")
    app = faust_app(settings, KafkaClients.of(settings))
    tables = Tables(app, "rocksdb", shards=SHARDS)
    return {(name, p): Path(table.data.partition_path(p))
            for name, table in tables.tables.items() for p in range(table.partitions)}


def write_rocksdb(paths: dict[Partition, Path], base, n: int) -> int:
    """Write `n` copies of the base records into the tables' local databases (no persisted
    offset: the changelogs are empty, Faust starts reading them from the beginning)."""
    from rocksdict import WriteBatch

    written = 0
    for part, records in base.items():
        db = open_rocksdb(paths[part])
        batch = WriteBatch(raw_mode=True)
        for i, (key, value) in enumerate(copies(records, n)):
            batch.put(key, value)
            if i % 50_000 == 49_999:
                db.write(batch)
                batch = WriteBatch(raw_mode=True)
        db.write(batch)
        written += len(records) * n
        db.flush()
        db.close()
    return written
