"""The batch producer places keyed records where Kafka's default partitioner (Java's murmur2,
as aiokafka implements it) does, also for keys it has seen before (its hashes are cached)."""
from __future__ import annotations

import itertools

from aiokafka.partitioner import DefaultPartitioner, murmur2

from streams.kafka.producer import partition_for


def test_keyed_records_go_where_the_default_partitioner_puts_them():
    partitions = list(range(12))
    keys = [f"profile-{i}".encode() for i in range(500)]
    counter = itertools.count()
    for _ in range(2):  # the second pass hits the cache
        for key in keys:
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert partition_for(key, partitions, counter) == expected
            assert expected == (murmur2(key) & 0x7FFFFFFF) % 12


def test_keyless_records_go_round_robin_and_one_partition_takes_all():
    counter = itertools.count()
    assert [partition_for(None, [0, 1, 2], counter) for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    assert partition_for(b"any", [7], counter) == 7
