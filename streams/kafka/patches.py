"""Exact end offsets on brokers whose ListOffsets(latest) answer is wrong, and the Faust fix using
them; with three smaller fixes of Faust's and aiokafka's internals (leave group, fetch wait, and
the seek back of partitions never committed).

The broker bug (Tansu 0.6.0, the embedded broker): ListOffsets with timestamp -1 ("latest") answers
`base offset of the last record batch + 1` instead of the log end offset. After one producer batch
of 5,000 records at offsets 0..4999 it answers 1, not 5000. The high-water mark that the same broker
returns in every Fetch response is correct.

Faust's table recovery trusts ListOffsets (`AIOKafkaConsumerThread._highwaters` calls aiokafka's
`end_offsets`) and decides it is done as soon as it has read offset `end - 1`. With the wrong answer
it stops at the first record of the last changelog batch: the changelog partition is paused, records
already fetched after that point wait in a recovery buffer that is only applied once it holds
`recovery_buffer_size` events, and the rest is never fetched. The table then silently misses the
updates of the last batch (seen: 49,996 of 50,000 keys).

`true_end_offsets` asks ListOffsets and then confirms every non-zero answer with a Fetch from
`answer - 1` (the last record on a correct broker, the last batch on Tansu), taking the high-water
mark of that Fetch response; the result is `max(ListOffsets, high-water)`. On a correct broker both
are equal and the fix costs one short fetch per partition per recovery.

`install_faust_recovery_fix()` routes Faust's recovery end offsets through the same confirmation.
That one method is the only place Faust reads end offsets from ListOffsets:
`Recovery._build_highwaters` (actives and standbys) is its only caller, every other use of
"highwater" in Faust (`Consumer.highwater`, `verify_event_path`, the monitor) already reads the
fetch high-water mark.
Faust's "-1" convention stays consistent: `_build_highwaters` stores `end - 1`, the offset of the
last record, and recovery is complete when the last offset read equals it, which with the true end
means after the last record of the last batch.

Checked against the RocksDB table store (streams/worker/tables.py): Faust's recovery starts an
active or standby changelog partition at `max(persisted offset, earliest - 1)` and is done when it
has read the highwater (`end - 1`); the persisted offset is the last record applied, which the
worker sets to the last offset its own changelog produce acknowledged (the batch's base offset +
records - 1, from the produce response, which Tansu gets right). The two agree only with this
fix: with Tansu's ListOffsets answer the highwater is `base of last batch`, below the persisted
offset whenever the last changelog batch holds more than one record, and Faust's consistency
check (`recovery_consistency_check`, on by default) would refuse every such restart on the same
disk with a ConsistencyError (read from faust/tables/recovery.py, not run here); and a tail
written while the worker was down would be cut at its last batch, as in the memory case. With
the fix a clean restart finds persisted == highwater (nothing to read) and one after kill -9
reads exactly the unapplied tail (tests/e2e/test_rocksdb_restart.py). The fix is needed for
`memory://` (exact recovery) and for `rocksdb://` (a restart at all).

The confirming consumer is built by streams/kafka/clients.py: `true_end_offsets` takes a
`KafkaClients` (or the brokers alone, plus aiokafka keyword arguments); inside Faust it connects
with the app's own brokers and `broker_credentials` (what `KafkaClients.faust_broker` gives). The
patches replace private methods of Faust and aiokafka: those lines say so (`noqa: SLF001`).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.kafka.clients import KafkaClients

__all__ = ["confirm_end_offsets", "install_faust_recovery_fix", "install_fetch_wait_fix",
           "install_leave_group_fix", "install_seek_back_fix", "true_end_offsets"]

TPLike = TypeVar("TPLike", bound=tuple)  # aiokafka TopicPartition, faust TP, or (topic, partition)
Connection = KafkaClients | str | list[str]  # a KafkaClients, or the brokers alone

_PATCH_MARKER = "__parcours_true_end_offsets__"


def _consumer(connection: Connection, timeout: float,
              client_kwargs: Mapping[str, Any]) -> AIOKafkaConsumer:
    kwargs: dict[str, Any] = {
        "client_id": "parcours-end-offsets",
        "request_timeout_ms": int(timeout * 1000),
        "fetch_max_wait_ms": 100,  # a fetch at the log end must not wait for new data
        "max_partition_fetch_bytes": 1024 * 1024,
        **client_kwargs,
    }
    # Assign-only: no group, nothing committed; every record visible, as in a changelog read.
    kwargs.update(group_id=None, enable_auto_commit=False, isolation_level="read_uncommitted")
    return KafkaClients.at(connection).consumer(**kwargs)


async def _stop(consumer: AIOKafkaConsumer) -> None:
    # aiokafka 0.14: stopping a group-less consumer before its first await raises CancelledError
    # (its NoGroupCoordinator task is cancelled before it ever ran); give that task one loop turn.
    await asyncio.sleep(0)
    await consumer.stop()


async def _confirm(
    consumer: AIOKafkaConsumer, listed: Mapping[TPLike, int], deadline: float
) -> dict[TPLike, int]:
    """Fetch from `listed - 1` on every partition with a non-zero answer; return
    max(listed, highwater)."""
    result = dict(listed)
    to_check = {TopicPartition(tp[0], tp[1]): tp for tp, offset in listed.items()
                if offset and offset > 0}
    if not to_check:
        return result
    consumer.assign(list(to_check))
    earliest = await consumer.beginning_offsets(list(to_check))
    for tp, key in to_check.items():
        # Never before the log start: a fully deleted log answers (start, start) and must not raise.
        consumer.seek(tp, max(int(listed[key]) - 1, earliest.get(tp, 0)))
    pending = set(to_check)
    while pending:
        await consumer.getmany(*pending, timeout_ms=100, max_records=1)
        for tp in list(pending):
            highwater = consumer.highwater(tp)
            if highwater is not None:
                key = to_check[tp]
                result[key] = max(result[key], int(highwater))
                consumer.pause(tp)
                pending.discard(tp)
        if pending and time.monotonic() >= deadline:
            raise TimeoutError(
                f"no fetch response (high-water mark) for {sorted(pending)} before the timeout; "
                "the end offsets of these partitions cannot be confirmed"
            )
    return result


async def confirm_end_offsets(
    connection: Connection,
    listed: Mapping[TPLike, int],
    *,
    timeout: float = 10.0,
    **client_kwargs: Any,
) -> dict[TPLike, int]:
    """Correct ListOffsets(latest) answers `{tp: offset}` with the fetch high-water mark.

    `connection`: a `KafkaClients` or the brokers; `client_kwargs` go to AIOKafkaConsumer on top of
    its options (security_protocol, ssl_context, sasl_*, client_id...).
    Raises TimeoutError when a partition gives no fetch response within `timeout` seconds.
    """
    if not any(offset and offset > 0 for offset in listed.values()):
        return dict(listed)
    deadline = time.monotonic() + timeout
    consumer = _consumer(connection, timeout, client_kwargs)
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        return await _confirm(consumer, listed, deadline)
    finally:
        await _stop(consumer)


async def true_end_offsets(
    connection: Connection,
    tps: Iterable[TPLike],
    *,
    timeout: float = 10.0,
    **client_kwargs: Any,
) -> dict[TPLike, int]:
    """The log end offset (next offset to be written) of each partition, exact even on Tansu.

    `tps` are (topic, partition) pairs: aiokafka `TopicPartition`, Faust `TP` or plain tuples; the
    result is keyed by the same objects. ListOffsets(latest) first, then `confirm_end_offsets`.
    """
    keys = list(dict.fromkeys(tps))
    if not keys:
        return {}
    deadline = time.monotonic() + timeout
    consumer = _consumer(connection, timeout, client_kwargs)
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        answers = await consumer.end_offsets([TopicPartition(tp[0], tp[1]) for tp in keys])
        listed = {tp: int(answers[TopicPartition(tp[0], tp[1])]) for tp in keys}
        return await _confirm(consumer, listed, deadline)
    finally:
        await _stop(consumer)


def install_faust_recovery_fix() -> bool:
    """Make Faust's table recovery read changelogs up to their true end; idempotent.

    Wraps `faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._highwaters` (the source of the
    end offsets `Recovery._build_highwaters` uses for active and standby changelog partitions) so
    that its ListOffsets answers go through `confirm_end_offsets`, with the app's own bootstrap
    servers, client id and credentials. Inside a transaction Faust uses the last stable offset from
    fetch responses instead of ListOffsets; that path is left as is.
    Returns True when this call installed the fix, False when it was already installed.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_cls = driver.AIOKafkaConsumerThread
    current = getattr(thread_cls, "_highwaters", None)
    if current is None:
        raise RuntimeError(
            "this faust version has no AIOKafkaConsumerThread._highwaters: the recovery fix "
            "(written for faust-streaming 0.15) must be reviewed against its recovery code"
        )
    if getattr(current, _PATCH_MARKER, False):
        return False
    original = current

    async def _highwaters(self: Any, partitions: list) -> Mapping:
        listed = await original(self, partitions)
        if self.consumer.in_transaction:
            return listed
        conf = self.app.conf
        transport = self.transport
        return await confirm_end_offsets(
            driver.server_list(transport.url, transport.default_port),
            listed,
            timeout=float(conf.broker_request_timeout),
            client_id=conf.broker_client_id,
            **driver.credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )

    _highwaters.__doc__ = original.__doc__
    _highwaters.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(_highwaters, _PATCH_MARKER, True)
    thread_cls._highwaters = _highwaters  # noqa: SLF001
    return True


def install_leave_group_fix() -> bool:
    """Let a consumer of generation 0 leave its group cleanly; idempotent.

    Tansu numbers a group's first generation 0 (Kafka starts at 1), and aiokafka only sends
    LeaveGroup when `generation > 0`, so the first member of every group left silently and the next
    worker to join (a restart) waited for its session to expire. LeaveGroup carries no generation:
    for generation 0 the check is passed by presenting generation 1 to aiokafka's own method, which
    then sends the request and resets the generation as usual. Real Kafka never has generation 0
    for a joined member, so nothing changes there. Returns True when this call installed it.
    """
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    current = GroupCoordinator._maybe_leave_group  # noqa: SLF001
    if getattr(current, _PATCH_MARKER, False):
        return False

    async def _maybe_leave_group(self: Any) -> None:
        if self.generation == 0:
            self.generation = 1  # reset by the original method right after the request
        await current(self)

    setattr(_maybe_leave_group, _PATCH_MARKER, True)
    GroupCoordinator._maybe_leave_group = _maybe_leave_group  # noqa: SLF001
    return True


def install_seek_back_fix() -> bool:
    """Make Faust's seek back to committed offsets rewind partitions never committed; idempotent.

    Faust's consumer takes records of every assigned partition from aiokafka (which moves its
    positions past them) and drops those it cannot deliver now: all of them when a rebalance
    begins in the middle of a fetch, or those of a partition not active yet (`Consumer.getmany`).
    It counts on `perform_seek` ("seek stream partitions to committed offsets", after each recovery
    and whenever a fetch finds the flow stopped) to read them again. aiokafka's
    `seek_to_committed` only moves partitions whose committed offset is above 0: a partition never
    committed (or committed at 0) keeps its advanced position, and what was dropped is never
    delivered. A partition of `parcours.transfer` often has no commit yet (a hand-off is rare), so
    a transfer fetched just before its shard moved to another worker was lost there, and its
    survivor stayed parked for good (tests/e2e/test_shards.py, 2 runs in 29).

    With the fix, every stream partition `seek_to_committed` finds without a committed offset, or
    at 0, is sought to its beginning: where the consumer's `earliest` reset policy starts one
    anyway. Changelog partitions are left alone (their positions are the tables' own), and so is a
    consumer whose reset policy is not `earliest`. Returns True when this call installed it.
    """
    from faust.transport.drivers import aiokafka as driver

    thread_cls = driver.AIOKafkaConsumerThread
    current = thread_cls.seek_to_committed
    if getattr(current, _PATCH_MARKER, False):
        return False

    async def seek_to_committed(self: Any) -> Mapping:
        consumer = self._ensure_consumer()
        if self.app.conf.consumer_auto_offset_reset != "earliest":
            return await current(self)
        changelogs = self.app.tables.changelog_topics

        async def seek() -> Mapping:
            committed = await consumer.seek_to_committed()
            never = [tp for tp, offset in committed.items()
                     if not offset and tp.topic not in changelogs]
            if never:
                await consumer.seek_to_beginning(*never)
            return committed

        return await self.call_thread(seek)

    seek_to_committed.__doc__ = current.__doc__
    seek_to_committed.__wrapped__ = current  # type: ignore[attr-defined]
    setattr(seek_to_committed, _PATCH_MARKER, True)
    thread_cls.seek_to_committed = seek_to_committed
    return True


_fetch_max_wait_ms = 0  # the cap for Faust consumers created from now on; 0: Faust's own 1,500


def install_fetch_wait_fix(max_wait_ms: int) -> bool:
    """Cap how long Faust's consumer lets the broker hold a fetch (0: no cap). The class is patched
    once; each call sets the cap for the consumers created after it.

    Faust creates its consumer with `fetch_max_wait_ms=1500` (not configurable). With
    `fetch_min_bytes=1` a Kafka broker answers a fetch as soon as one record is there, so the wait
    only bounds idle polling. Tansu holds a fetch for the whole wait even when records arrive in
    the meantime: measured with one record every 100 ms, a consumer sees them after 345 ms (p50)
    with 1,500 ms, 134 ms with 500 ms, 3 ms with 50 ms; the worker has two such hops (touchpoints ->
    ingest, parcours.stitch -> journey), and `make bench` measured the produce-to-trigger p50 at
    1,000 touchpoints/s going from 626 ms (1,500) to 101 ms (50) and 60 ms (20). 20 ms costs a real
    broker at most 50 empty fetches per second per idle consumer. Returns True when installed.

    On by default (`PARCOURS_FETCH_MAX_WAIT_MS`, 20; 0 leaves Faust's 1,500). It was opt-in for a
    while: the restart tests failed about 1 run in 4 with it. The failure was the Martin test's
    assumption that his web touchpoints reach the journey before his app touchpoints (they are on
    different input partitions, and a shorter fetch wait changes which comes first); the test now
    follows the merges, and 8 runs in a row of the restart, kill and recovery tests passed with it.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    global _fetch_max_wait_ms
    _fetch_max_wait_ms = max_wait_ms
    current = AIOKafkaConsumerThread._create_worker_consumer  # noqa: SLF001
    if getattr(current, _PATCH_MARKER, False):
        return False

    def _create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = current(self, transport)
        if _fetch_max_wait_ms:
            # read by the Fetcher created in start()
            consumer._fetch_max_wait_ms = _fetch_max_wait_ms  # noqa: SLF001
        return consumer

    setattr(_create_worker_consumer, _PATCH_MARKER, True)
    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # noqa: SLF001
    return True
