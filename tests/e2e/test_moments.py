"""Moments end to end: embedded broker -> `parcours worker` process -> trigger topics and chDB.

The Martin journey must give exactly one push offer, inside his allowed hours, on the channel he
opted into; an absence timer set before a worker restart must fire after it.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import orjson
import pytest

from sinks.clickhouse import connect
from streams import simulate
from streams.embedded.worker_process import WorkerProcess, count_until
from tests.e2e.test_worker import START, TOPICS, _produce, _read_topic

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")


def _event_id(_topic, record) -> str:
    return orjson.loads(record.value)["event_id"]


def _wait(kafka, worker, topics, expected, key=_event_id):
    """Until `expected` distinct touchpoints came out (a batch replayed after a stop repeats
    some)."""
    try:
        asyncio.run(count_until(kafka.bootstrap, topics, expected, timeout=180, alive=worker.alive,
                                key=key))
    except (TimeoutError, RuntimeError) as exc:
        pytest.fail(f"{exc}\n--- worker log ---\n{worker.log_tail(60)}")


SHOPPER = {"user": "u-shop", "device": "d-shop"}


def _shopper_view() -> dict:
    """Someone near Paris 15 views a car that is out of stock online (and unknown to the inventory
    file); the inventory topic says Paris 15 has two."""
    return {"event_id": "shop-1", "event_time": int(START.timestamp() * 1000) + 86_400_000,
            "type": "product_view", "channel": "web", "ids": SHOPPER,
            "context": {"lat": 48.8437, "lon": 2.2958, "tz": "Europe/Paris"},
            "properties": {"product_id": "suv-z", "in_stock": False}}


def test_martin_gets_exactly_one_push_offer(kafka, tmp_path, ch_url):
    kafka.create_topics({TOPICS.touchpoints: 2, TOPICS.stitch: 1, TOPICS.inventory: 1,
                         TOPICS.preferences: 1})
    events = list(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=60, seed=21, start=START).events(),
        [_shopper_view()]))
    # reference data arrives by Kafka: stock for a product the inventory file does not know, and
    # the shopper's preference-centre record (e-mail opt-in)
    asyncio.run(_send(kafka.bootstrap, TOPICS.inventory, b"paris-15|suv-z",
                      {"store_id": "paris-15", "product_id": "suv-z", "quantity": 2}))
    url = ch_url()
    worker = WorkerProcess(kafka.url, url, tmp_path / "data", app_id="e2e-martin",
                           log_path=tmp_path / "worker.log")
    with worker:
        asyncio.run(_send(kafka.bootstrap, TOPICS.preferences, None, {
            "ids": SHOPPER, "channel": "email", "opt_in": True,
            "updated_at": "2026-10-01T09:00:00Z"}))
        _wait(kafka, worker, [TOPICS.stitched], 1)
        # keyed like real producers: one person's device stays on one partition, in order
        asyncio.run(simulate.produce(events, kafka.bootstrap, TOPICS.touchpoints))
        _wait(kafka, worker, [TOPICS.stitched], len(events) + 1)

    client = connect(url)
    (martin,), = client.query("SELECT profile_id FROM identity_map FINAL WHERE is_deleted = 0 "
                              "AND identifier = 'u-42'").result_rows
    # his web and app touchpoints are on different input partitions: whichever arrives first, the
    # app profile may fire before it is merged into his web profile; a trigger carries the profile
    # it fired for, so "Martin" is his profile and every profile merged into it
    his = _merged_into(client, martin)
    pushes = [orjson.loads(r.value)
              for r in asyncio.run(_read_topic(kafka.bootstrap, "triggers.push"))]
    mine = [t for t in pushes if t["profile_id"] in his]
    assert len(mine) == 1, mine
    offer = mine[0]
    assert (offer["rule"], offer["channel"], offer["code"]) == ("near_store_offer", "push",
                                                                "XPGJRL")
    assert offer["event_id"] == "martin-08" and offer["payload"]["store_id"] == "paris-15"
    local = datetime.fromtimestamp(offer["fired_at"] / 1000, timezone.utc).astimezone(PARIS)
    assert 8 <= local.hour < 21, local  # his quiet hours are 21:00-08:00
    consent = next(e for e in events if e["event_id"] == "martin-07")
    assert consent["properties"] == {**consent["properties"], "channel": "push", "opt_in": True}
    # the store visit two minutes later is the same moment: held back by the rule's cooldown
    held = client.query("SELECT reason, trigger_id FROM suppressions FINAL WHERE "
                        "has({p:Array(String)}, profile_id) AND rule = 'near_store_offer'",
                        parameters={"p": sorted(his)}).result_rows
    assert held == [("cooldown", held[0][1])] and held[0][1] != offer["trigger_id"]
    rows = client.query("SELECT trigger_id, channel, code, rule FROM triggers FINAL WHERE "
                        "has({p:Array(String)}, profile_id) AND channel = 'push'",
                        parameters={"p": sorted(his)}).result_rows
    assert rows == [(offer["trigger_id"], "push", "XPGJRL", "near_store_offer")]
    # and every trigger in ClickHouse is on its channel's topic
    total = client.query("SELECT count() FROM triggers FINAL "
                         "WHERE channel = 'push'").result_rows[0][0]
    assert total == len({t["trigger_id"] for t in pushes})

    # the stock join used the inventory topic; the preference topic opted the shopper in to e-mail
    emails = [orjson.loads(r.value)
              for r in asyncio.run(_read_topic(kafka.bootstrap, "triggers.email"))]
    shop = [(t["rule"], t["payload"]) for t in emails if t["event_id"] == "shop-1"]
    assert shop == [("out_of_stock_online_in_store",
                     {"product_id": "suv-z", "store_id": "paris-15"})]


def test_a_partition_read_to_its_end_before_a_restart_does_not_hold_the_timers(kafka, tmp_path,
                                                                               ch_url):
    """Partition 1 was read to its end by the first worker and gets nothing after a restart: the
    second worker reports it idle, so partition 0 alone moves the watermark past the absence."""
    kafka.create_topics({TOPICS.touchpoints: 2, TOPICS.stitch: 1})
    t0 = int(datetime(2026, 11, 18, 10, 0, tzinfo=PARIS).timestamp() * 1000)

    def send(partition, event_id, t, type_, cookie, **props):
        asyncio.run(_send(kafka.bootstrap, TOPICS.touchpoints, None, {
            "event_id": event_id, "event_time": t, "type": type_, "channel": "web",
            "ids": {"cookie": cookie}, "properties": props}, partition=partition))

    url = ch_url()
    common = dict(app_id="e2e-idle-restart", log_path=tmp_path / "worker.log",
                  extra_env={"PARCOURS_IDLE_SECONDS": "1"})
    first = WorkerProcess(kafka.url, url, tmp_path / "data", **common)
    with first:  # a clean stop: both partitions' offsets committed at their ends
        send(0, "p1", t0, "price_view", "c-1", product_id="suv-x")
        send(1, "q1", t0, "page_view", "quiet")
        _wait(kafka, first, [TOPICS.stitched], 2)
    second = WorkerProcess(kafka.url, url, tmp_path / "data", **common)
    with second:
        # price_seen_then_left: 30 min + 5 min lateness; partition 1 stays at t0
        send(0, "o2", t0 + 36 * 60_000, "page_view", "other")
        _wait(kafka, second, ["triggers.display"], 1)
        display = asyncio.run(_read_topic(kafka.bootstrap, "triggers.display"))
    assert [orjson.loads(r.value)["event_id"] for r in display] == ["p1"], second.log_tail(40)


def _merged_into(client, profile: str) -> set[str]:
    """`profile` and every profile merged into it, directly or through another merge."""
    merges = client.query("SELECT survivor, absorbed FROM identity_events FINAL "
                          "WHERE kind = 'merge'").result_rows
    found, grown = {profile}, True
    while grown:
        grown = False
        for survivor, absorbed in merges:
            if survivor in found and not found.issuperset(absorbed):
                found.update(absorbed)
                grown = True
    return found


async def _send(bootstrap: str, topic: str, key, value: dict, partition: int | None = None) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, orjson.dumps(value), key=key, partition=partition)
    finally:
        await producer.stop()


def test_absence_timer_survives_a_worker_restart(kafka, tmp_path, ch_url):
    kafka.create_topics({TOPICS.touchpoints: 1, TOPICS.stitch: 1})
    t0 = int(datetime(2026, 11, 18, 10, 0, tzinfo=PARIS).timestamp() * 1000)

    def ev(event_id, t, type_, cookie="c-1", **props):
        return orjson.dumps({"event_id": event_id, "event_time": t, "type": type_, "channel": "web",
                             "ids": {"cookie": cookie}, "properties": props})

    url = ch_url()
    common = dict(app_id="e2e-absence", log_path=tmp_path / "worker.log")
    first = WorkerProcess(kafka.url, url, tmp_path / "data", **common).start()
    try:
        asyncio.run(_produce(kafka.bootstrap, [ev("p1", t0, "price_view", product_id="suv-x"),
                                               ev("o1", t0 + 60_000, "page_view", cookie="other")]))
        _wait(kafka, first, [TOPICS.stitched], 2)
    finally:
        first.kill()  # a crash: the timer must come back from the journey-timers changelog
    # price_seen_then_left: 30 min + 5 min lateness; the restarted worker must still know the timer
    second = WorkerProcess(kafka.url, url, tmp_path / "data", **common)
    with second:
        asyncio.run(_produce(kafka.bootstrap, [ev("o2", t0 + 36 * 60_000, "page_view",
                                                  cookie="other")]))
        _wait(kafka, second, [TOPICS.stitched], 3)  # o2 is out
        # the trigger goes out in the same batch as o2, but may land on its topic a moment later
        _wait(kafka, second, ["triggers.display"], 1)
        display = asyncio.run(_read_topic(kafka.bootstrap, "triggers.display"))
    fired = {orjson.loads(r.value)["trigger_id"]: orjson.loads(r.value) for r in display}
    assert [(t["rule"], t["event_id"], t["fired_at"], t["message"]) for t in fired.values()] == [
        ("price_seen_then_left", "p1", t0 + 30 * 60_000, "banner-1")], second.log_tail(40)
    client = connect(url)
    assert client.query("SELECT count() FROM triggers FINAL").result_rows[0][0] == 1
