"""The shell's batch handling: stitch chunks, idle reports (ClickHouse outages: test_sink_stage)."""
from __future__ import annotations

import asyncio

import pytest

from streams.config import Topics
from streams.shards import Sequencer
from streams.worker.journey import SequencerShell
from streams.worker.shell import Shell, chunk_json_lists
from tests.unit.worker.recording import RecordingProducer


@pytest.mark.parametrize("sizes", [[10], [100] * 50, [5000, 10, 10]])
def test_chunks_keep_every_item_in_order_under_the_size_limit(sizes):
    import orjson

    items = [{"event_id": f"e{i}", "pad": "x" * n} for i, n in enumerate(sizes)]
    chunks = chunk_json_lists(items, max_bytes=2048)
    assert [item for chunk in chunks for item in orjson.loads(chunk)] == items
    assert all(len(c) <= 2048 or len(orjson.loads(c)) == 1 for c in chunks)


def test_idle_partitions_are_reported_once_after_a_quiet_period_and_free_the_watermark():
    import orjson

    from streams.worker.shell import CONTROL, IDLE_REPEAT

    topics = Topics()
    producer = RecordingProducer()
    shell = Shell(topics, producer)
    shell.positions[(topics.touchpoints, 0)] = 10
    # partition 0: consumed to its high-water mark; partition 1: 5 records not consumed yet
    # first look: not quiet long enough
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 1
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0  # reported once...
    for _ in range(IDLE_REPEAT - 2):
        assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 0
    assert asyncio.run(shell.report_idle([(0, 10), (1, 5)])) == 1  # ...and again, while idle
    producer.records = producer.records[:1]
    (topic, _key, value), = producer.records
    assert topic == topics.stitch and orjson.loads(value) == [
        {CONTROL: "idle", "source": "0", "at": 10}]  # idle at its log end offset
    # the sequencer applies it: the watermark no longer waits for partition 0
    sequencer = Sequencer(shards=2, lateness_ms=0, sources=2)
    out, size = SequencerShell(sequencer, topics, producer, list)._run(orjson.loads(value))
    assert size == 0 and out.identity == []
    assert sequencer.watermark.idle == {"0"} and sequencer.watermark.idle_at == {"0": 10}


class LogEnds:
    """A stand-in of streams.kafka.log_ends.LogEnds over given ends (the real one asks the
    broker: tests/e2e/test_shards.py)."""

    def __init__(self, ends: dict[int, int] | None):
        self.ends, self.asked = ends, []

    async def grown(self, topic: str, offsets: dict[int, int]) -> set[int]:
        self.asked.append(dict(offsets))
        if self.ends is None:
            raise ConnectionError("broker unreachable")
        return {p for p, at in offsets.items() if self.ends.get(p, 0) > at}


def test_an_idle_partition_whose_log_grew_holds_the_frontier_before_its_records_come():
    """Partition 0 went idle at offset 10; its ingest worker dies before forwarding what came
    after. The other worker's newer records of partition 1 must not overtake them: the sequencer
    sees partition 0's log end past 10 and holds the frontier for it. Idle reports are decided
    after their batch, and each check is a changelog run of its own before what it releases."""
    import orjson

    from streams.worker.shell import CONTROL

    topics = Topics()
    base = 1_790_000_000_000

    def event(i: int, partition: int, minute: int) -> dict:
        return {"event_id": f"e{i}", "event_time": base + minute * 60_000, "type": "page_view",
                "channel": "web", "ids": {"cookie": f"c{i}"}, "_src": partition, "_off": i}

    class Message:
        def __init__(self, offset: int, items: list):
            self.offset, self.partition, self.value = offset, 0, orjson.dumps(items)

    class Event:
        def __init__(self, offset: int, items: list):
            self.message = Message(offset, items)

    changelogs: list[str] = []

    def shell(ends):
        sequencer = Sequencer(shards=2, lateness_ms=0, sources=2)
        run = SequencerShell(sequencer, topics, RecordingProducer(),
                             lambda: changelogs.append("run") or [], log_ends=LogEnds(ends))
        asyncio.run(run.run([Event(0, [event(0, 0, 0), event(1, 1, 1)]),
                             Event(1, [{CONTROL: "idle", "source": "0", "at": 10}])]))
        return run, sequencer

    # the log has not grown: the report is decided after its batch, partition 0 is idle
    run, sequencer = shell({0: 10})
    assert sequencer.watermark.idle == {"0"} and sequencer.watermark.idle_at == {"0": 10}
    assert sequencer.watermark.reported == {} and run.log_ends.asked == [{0: 10}]
    asyncio.run(run.run([Event(2, [event(2, 1, 30)])]))  # partition 1's newer record
    assert sequencer.watermark.clock >= base + 30 * 60_000  # the frontier moved on
    # it has grown: partition 0 holds the frontier again, at its own mark
    run, sequencer = shell({0: 10})
    run.log_ends.ends = {0: 12}
    changelogs.clear()
    asyncio.run(run.run([Event(2, [event(2, 1, 30)])]))
    assert sequencer.watermark.idle == set()
    assert sequencer.watermark.clock <= base + 60_000
    assert changelogs == ["run"] * 2  # the check's run (nothing to release then), the batch's
    # a report about a log that grew before it was decided is dropped
    run, sequencer = shell({0: 12})
    assert sequencer.watermark.idle == set() and sequencer.watermark.reported == {}
    # the ends cannot be read: idle partitions hold the frontier, reports wait (late beats wrong)
    run, sequencer = shell(None)
    assert sequencer.watermark.idle == set() and sequencer.watermark.reported == {"0": 10}
    run.log_ends.ends = {0: 10}
    asyncio.run(run.run([]))
    assert sequencer.watermark.idle == {"0"}


BASE = 1_790_000_000_000


def _person(i: int, partition: int, minute: int) -> dict:
    """Touchpoint e<i> of input partition `partition` (its offset: i), `minute` after BASE."""
    return {"event_id": f"e{i}", "event_time": BASE + minute * 60_000, "type": "page_view",
            "channel": "web", "ids": {"email": f"p{i}@example.com"}, "_src": partition, "_off": i}


class _Stitched:
    """A stitch message as the sequencer agent gets it (`event.message`)."""

    def __init__(self, offset: int, items: list):
        import orjson

        self.message = type("Message", (), {"offset": offset, "partition": 0,
                                            "value": orjson.dumps(items)})()


def _numbered(producer, topics: Topics) -> list:
    """The journey items sent with a sequence number, every shard's, in the order sent."""
    import orjson

    return [item for topic, _k, value, *_ in producer.records if topic == topics.journey
            for item in orjson.loads(value) if "s" in item]


def _crash_after_the_check(topics: Topics):
    """Partition 0 idle at offset 10 (its log not grown), then partition 1's record at minute 30
    (stitch offset 2) goes through: (the shell, the state its first changelog run of that batch
    made durable (the check's, before the outputs), the numbered items the batch sent)."""
    import copy

    from streams.worker.shell import CONTROL

    stores: dict = {}
    snapshots: list[dict] = []

    def changelog() -> list:  # the state each changelog run makes durable
        snapshots.append(copy.deepcopy(stores))
        return []

    first = SequencerShell(Sequencer(stores, shards=2, lateness_ms=0, sources=2), topics,
                           RecordingProducer(), changelog, log_ends=LogEnds({0: 10}))
    asyncio.run(first.run([_Stitched(0, [_person(0, 0, 0), _person(1, 1, 1)]),
                           _Stitched(1, [{CONTROL: "idle", "source": "0", "at": 10}])]))
    first.producer.records.clear()
    del snapshots[:]
    asyncio.run(first.run([_Stitched(2, [_person(2, 1, 30)])]))
    return first, copy.deepcopy(snapshots[0]), _numbered(first.producer, topics)


def test_a_batch_read_again_after_a_crash_meets_the_check_made_the_first_time():
    """Partition 0 is idle at offset 10 and its log has not grown when partition 1's newer
    record comes: the frontier moves on, and the items go out. The worker dies before the
    batch's changelog. By the time the batch is read again, partition 0's log has grown; asked
    again, the check would hold the frontier, release nothing and number the items otherwise
    (the shards would skip them as seen). The check recorded before the outputs is kept."""
    topics = Topics()
    first, before_outputs, sent = _crash_after_the_check(topics)
    assert [item["t"]["event_id"] for item in sent if item["k"] == "e"] == ["e1"]
    # the check before the batch decided for the stitch messages after position 1 up to 2
    assert before_outputs["clock"]["watermark"]["k"] == [1, 2]
    again = SequencerShell(Sequencer(before_outputs, shards=2, lateness_ms=0, sources=2),
                           topics, RecordingProducer(), list, log_ends=LogEnds({0: 12}))
    asyncio.run(again.run([_Stitched(2, [_person(2, 1, 30)])]))
    assert _numbered(again.producer, topics) == sent  # ticks carry no number: sent again
    assert again.sequencer.watermark.clock == first.sequencer.watermark.clock
    # asked once, after the batch (the check the crash came before): partition 0 holds again
    assert again.log_ends.asked == [{0: 10}] and again.sequencer.watermark.idle == set()


def test_messages_after_the_part_decided_before_a_crash_get_a_check_of_their_own():
    """The same crash, but the batch read again also holds a newer message (offset 3, partition
    1, an hour later). The recorded decision orders offset 2 as the first time; offset 3 comes in
    a round of its own, after a fresh check: partition 0's log has grown, it holds the frontier,
    and the newer message does not push the watermark past partition 0's coming records."""
    topics = Topics()
    first, before_outputs, sent = _crash_after_the_check(topics)
    clock = first.sequencer.watermark.clock
    again = SequencerShell(Sequencer(before_outputs, shards=2, lateness_ms=0, sources=2),
                           topics, RecordingProducer(), list, log_ends=LogEnds({0: 12}))
    asyncio.run(again.run([_Stitched(2, [_person(2, 1, 30)]), _Stitched(3, [_person(3, 1, 90)])]))
    assert _numbered(again.producer, topics)[:len(sent)] == sent  # offset 2: as the first time
    wm = again.sequencer.watermark
    # the check at the end of the decided part (after offset 2) found partition 0 grown: it holds
    # the frontier before offset 3 is ordered, and the clock did not move on
    assert again.log_ends.asked == [{0: 10}] and wm.idle == set() and wm.clock == clock
    assert wm.position == 3 and wm.checked == (2, 2)
