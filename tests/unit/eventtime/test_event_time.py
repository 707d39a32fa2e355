"""Event-time order in the pure pipeline: held touchpoints, credit once the watermark passes a
conversion, late touches, re-delivered records, erasure of held events, the idle set as state."""
from __future__ import annotations

from streams.ingest import OFFSET, SOURCE
from streams.pipeline import Pipeline
from tests.unit.moments.test_engine import at, ev


def arrive(pipeline: Pipeline, partition: int, offset: int, event: dict, **kw):
    """One normalised touchpoint from input `partition` at `offset` (as ingest tags it)."""
    tp = {"campaign": None, "publisher": None, "context": {}, "properties": {}, **event,
          SOURCE: partition, OFFSET: offset}
    return pipeline.process([tp], **kw)


def touch(event_id, t, cookie="c-1", channel="display"):
    return ev(event_id, t, "click", channel, ids={"cookie": cookie})


def test_a_conversion_waits_for_the_touch_still_on_another_partition():
    p = Pipeline(sources=2)
    out = arrive(p, 0, 0, ev("buy", at(12), "purchase", "web", ids={"cookie": "c-1"}, revenue=10.0))
    out.extend(arrive(p, 0, 1, touch("later-0", at(13), cookie="other")))
    assert out.credits == [] and out.stitched == []  # partition 1 has sent nothing: all held
    out = arrive(p, 1, 0, touch("t1", at(11)))  # the touch arrives after the purchase
    assert out.stitched == [] and len(p.buffer) == 3  # the frontier is 11:00: nothing before it
    out = arrive(p, 1, 1, touch("later-1", at(13), cookie="other-1"))
    assert [s["event_id"] for s in out.stitched] == ["t1", "buy"]  # released in event-time order
    # the watermark (13:00 - 5 min) passed the purchase: credited, with the touch
    assert [c["touchpoint_id"] for c in out.credits if c["model"] == "linear"] == ["t1"]
    assert [x["path_id"] for x in out.paths] == ["buy"]


def test_a_touch_behind_the_watermark_before_a_credited_conversion_is_not_credited():
    p = Pipeline()
    arrive(p, 0, 0, touch("t1", at(9)))
    arrive(p, 0, 1, ev("buy", at(10), "purchase", "web", ids={"cookie": "c-1"}))
    out = arrive(p, 0, 2, touch("far", at(12), cookie="o"))
    assert [c["touchpoint_id"] for c in out.credits if c["model"] == "linear"] == ["t1"]
    out = arrive(p, 0, 3, touch("old", at(9, 30)))  # late, and its path closed at 10:00
    (late,) = out.late
    assert late["event_id"] == "old" and late["reason"].endswith(
        "; touch not credited: its path closed with the conversion at "
        "2026-11-18T09:00:00.000+00:00, already credited")
    assert p.attribution.book.path(out.stitched[0]["profile_id"]) == []
    out = arrive(p, 0, 4, ev("buy2", at(12, 30), "purchase", "web", ids={"cookie": "c-1"}))
    out.extend(p.end_of_input())
    out.extend(arrive(p, 0, 5, touch("farther", at(14), cookie="o")))
    assert {c["channel"] for c in out.credits if c["conversion_id"] == "buy2"} == {"direct"}


def test_a_waiting_conversion_follows_the_merge_of_its_profile():
    p = Pipeline()
    events = [touch("t-dev", at(9), cookie="c-web"),
              ev("buy", at(10), "purchase", "store", ids={"loyalty": "L-1"}, revenue=5.0),
              ev("login", at(10, 2), "identify", "web", ids={"cookie": "c-web", "loyalty": "L-1"}),
              touch("tick", at(11), cookie="o")]
    out = p.process([{**e, "campaign": None, "publisher": None, "context": {}, SOURCE: 0,
                      OFFSET: i} for i, e in enumerate(events)])
    out.extend(p.end_of_input())
    # credited at the watermark: after the login (within the lateness) merged the two profiles
    assert [c["touchpoint_id"] for c in out.credits if c["model"] == "linear"] == ["t-dev"]
    assert {c["profile_id"] for c in out.credits} == {p.identity.profile_of("loyalty:L-1")}


def test_an_input_record_delivered_twice_is_applied_once():
    p = Pipeline(sources=1)
    first = arrive(p, 0, 7, ev("buy", at(10), "purchase", "web", ids={"cookie": "c-1"}))
    again = arrive(p, 0, 7, ev("buy", at(10), "purchase", "web", ids={"cookie": "c-1"}))
    assert p.redelivered == 1 and again.stitched == [] and len(p.buffer) == 1
    assert first.stitched == []


def test_forget_drops_the_held_events_of_the_person():
    p = Pipeline(sources=2)
    arrive(p, 0, 0, ev("v1", at(10), "page_view", "web", ids={"email": "a" * 64, "cookie": "c-9"}))
    arrive(p, 0, 1, ev("v2", at(10, 1), "page_view", "web", ids={"cookie": "c-9"}))
    arrive(p, 0, 2, ev("v3", at(10, 2), "page_view", "web", ids={"cookie": "someone"}))
    assert len(p.buffer) == 3
    out = p.forget("cookie:c-9")  # known only from held events: no profile yet
    assert out.identity[0]["survivor"] == ""
    assert len(p.buffer) == 1
    out = p.end_of_input()
    assert [s["event_id"] for s in out.stitched] == ["v3"]


def test_the_idle_set_is_state_and_a_resume_holds_the_frontier_again():
    stores: dict = {}
    p = Pipeline(stores, sources=2)
    arrive(p, 0, 0, touch("a", at(10)))
    arrive(p, 1, 0, touch("b", at(9), cookie="c-b"))
    out = p.idle("1")
    assert [s["event_id"] for s in out.stitched] == ["b"]  # 'a' is at the frontier: still held
    restarted = Pipeline(stores, sources=2)
    assert restarted.watermark.idle == {"1"}
    restarted.resume("1")
    out = arrive(restarted, 0, 1, touch("c", at(11)))
    assert out.stitched == []  # partition 1 holds the frontier again, at 9:00
    out = arrive(restarted, 1, 1, touch("d", at(12), cookie="c-b"))
    assert [s["event_id"] for s in out.stitched] == ["a"]  # c (11:00) is the frontier
