"""The journey over partitioned input gives what `parcours replay` gives, whatever the schedule.

Martin plus a synthetic population, spread over input partitions by producer key (so one person's
events are on several partitions), read in any interleaving, in any batches, with partitions going
idle and the worker killed mid-batch (the batch's outputs out, its state lost, input re-read): the
triggers, suppressions, credit, closed paths, late events, identity events and identity map equal
a replay of the same events in file order. Every rule kind of the default pack fires on this
population (event, sequence, absence, count), so each is checked the same way.
"""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import simulate
from streams.moments.rules.loader import DEFAULT_PACK, load_pack_text
from tests.unit.eventtime.stream_model import Worker, partition_of, replayed

START = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
EVENTS = list(simulate.in_time_order(
    simulate.martin_journey(START),
    simulate.Population(profiles=60, seed=7, start=START).events()))
# the default pack, plus a sequence this population completes (its own search-to-price is rare)
PACK = load_pack_text(DEFAULT_PACK.read_text() + """
  - id: click_then_price
    when:
      sequence:
        steps: [{type: click}, {type: price_view}]
        within: 1h
    cooldown: 1h
    action: {channels: [display, web]}
""", base_dir=DEFAULT_PACK.parent)
REFERENCE, REPLAY = replayed(EVENTS, rules=PACK)
TABLES = ("triggers", "suppressions", "credits", "paths", "late")


def _same_as_replay(worker: Worker) -> None:
    final = worker.finish()
    for name in TABLES:
        assert final.rows(name) == REFERENCE.rows(name), name
    assert final.stitched == REFERENCE.stitched
    assert final.identity_events == REFERENCE.identity_events
    assert list(worker.pipeline.identity.export()) == list(REPLAY.identity.export())
    assert len(worker.pipeline.buffer) == 0


def test_the_population_exercises_every_rule_kind_and_spreads_people_over_partitions():
    rules = REPLAY.moments.engine.rules
    candidates = [*REFERENCE.tables["triggers"].values(),
                  *REFERENCE.tables["suppressions"].values()]
    assert {rules[c["rule"]].kind for c in candidates} == {"event", "sequence", "absence", "count"}
    assert {rules[t["rule"]].kind for t in REFERENCE.tables["triggers"].values()} >= {
        "event", "sequence", "absence"}
    assert REFERENCE.tables["credits"] and REFERENCE.tables["paths"]
    assert REFERENCE.rows("late") == []
    martin = [e for e in EVENTS if e["event_id"].startswith("martin")]
    assert len({partition_of(e, 4) for e in martin}) >= 2


def test_martin_s_purchase_is_credited_to_his_six_touches():
    linear = [r for r in REFERENCE.rows("credits")
              if r["conversion_id"] == "martin-11" and r["model"] == "linear"]
    assert sorted(r["touchpoint_id"] for r in linear) == [
        "martin-01", "martin-02", "martin-03", "martin-04", "martin-09", "martin-10"]


def test_partitions_read_one_after_the_other():
    """The worst interleaving: each partition's whole backlog before the next one's."""
    worker = Worker(EVENTS, 4, rules=PACK)
    worker.produce(len(EVENTS))
    for p in reversed(range(4)):
        worker.consume(p, worker.available(p))
        worker.end_batch()
    _same_as_replay(worker)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partitions=st.sampled_from([2, 3, 4]), data=st.data())
def test_any_schedule_gives_the_replay(partitions, data):
    worker = Worker(EVENTS, partitions, rules=PACK)
    steps = data.draw(st.integers(5, 60), label="steps")
    for _ in range(steps):
        action = data.draw(st.sampled_from(["produce", "consume", "consume", "batch", "idle",
                                            "crash", "rebalance"]), label="action")
        if action == "produce":
            worker.produce(data.draw(st.integers(1, len(EVENTS) // 4), label="produced"))
        elif action == "consume":
            p = data.draw(st.integers(0, partitions - 1), label="partition")
            worker.consume(p, data.draw(st.integers(1, 300), label="records"))
        elif action == "batch":
            worker.end_batch()
        elif action == "idle":
            p = data.draw(st.integers(0, partitions - 1), label="idle partition")
            if worker.available(p) == 0:
                worker.idle(p)
        elif action == "rebalance":
            worker.rebalance(data.draw(st.integers(0, partitions - 1), label="moved partition"),
                             data.draw(st.integers(0, 100), label="re-read"))
        else:
            worker.crash(data.draw(st.integers(0, 400), label="stitch re-read"),
                         [data.draw(st.integers(0, 200), label="re-read")
                          for _ in range(partitions)])
    _same_as_replay(worker)


@pytest.mark.parametrize("partitions", [1, 4])
def test_a_crash_after_every_batch_changes_nothing(partitions):
    worker = Worker(EVENTS, partitions, rules=PACK)
    worker.produce(len(EVENTS))
    while True:
        for p in range(partitions):
            worker.consume(p, 120 // partitions)
        worker.end_batch()
        if not any(worker.available(p) for p in range(partitions)):
            break
        worker.consume(0, 20)
        worker.crash(60, [80 // partitions] * partitions)
    assert worker.crashes > 3 and worker.pipeline.redelivered > 0
    _same_as_replay(worker)
