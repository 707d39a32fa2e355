"""streams.simulate: the Martin journey, the synthetic population, malformed records, outputs.

The checks on the wire format are structural (what DESIGN.md's contract says a touchpoint is),
deliberately without the codec: the simulator must produce the contract, not what one codec
version happens to accept.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams import simulate
from streams.simulate import (MALFORMED_KINDS, OFFER_CODE, Population, malformed_events,
                              martin_journey, write_jsonl)

ROOT = Path(__file__).resolve().parents[1]
UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2026, 11, 16, 7, 0, tzinfo=UTC)
MARTIN_START = datetime(2026, 11, 20, 7, 15, tzinfo=UTC)      # 08:15 in Paris, on the metro
CHANNELS = {"search", "display", "social", "email", "affiliate", "video", "push", "sms", "app",
            "web", "store", "direct"}
MARTIN_TYPES = ["email_open", "impression", "click", "page_view", "price_view", "app_open",
                "consent", "geofence_enter", "store_visit", "push_open", "purchase"]


# -- structural contract checks (no codec) -----------------------------------------------------
def event_ms(value) -> int:
    """event_time -> epoch ms; raises AssertionError when it is not one of the two wire forms."""
    if isinstance(value, bool):
        raise AssertionError(f"event_time is a bool: {value!r}")
    if isinstance(value, int):
        return value
    assert isinstance(value, str), f"event_time has type {type(value).__name__}"
    dt = datetime.fromisoformat(value)
    assert dt.tzinfo is not None and dt.utcoffset() is not None, f"naive event_time {value!r}"
    return (dt - EPOCH) // timedelta(milliseconds=1)


def touchpoint_problem(raw: bytes) -> str | None:
    """Why `raw` is not a valid JSON touchpoint of the contract, or None when it is one."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "not JSON"
    if not isinstance(obj, dict):
        return f"not an object ({type(obj).__name__})"
    for name in ("event_id", "type"):
        if name not in obj:
            return f"missing {name}"
        if not isinstance(obj[name], str) or not obj[name]:
            return f"{name} is not a non-empty string"
    if "event_time" not in obj:
        return "missing event_time"
    try:
        event_ms(obj["event_time"])
    except (AssertionError, ValueError) as exc:
        return f"bad event_time: {exc}"
    ids = obj.get("ids", {})
    if not isinstance(ids, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in ids.items()):
        return "ids is not a map of strings"
    for name in ("context", "properties"):
        if name in obj and obj[name] is not None and not isinstance(obj[name], dict):
            return f"{name} is not an object"
    for name in ("channel", "campaign", "publisher"):
        if obj.get(name) is not None and not isinstance(obj[name], str):
            return f"{name} is not a string"
    return None


def norm_id(id_type: str, value: str) -> str:
    if id_type == "email":
        return value.strip().lower()
    if id_type == "phone":
        return "+" + re.sub(r"\D", "", value)
    return value


@pytest.fixture(scope="module")
def population_events() -> list[dict]:
    return list(Population(3000, seed=11, start=START).events())


# -- Martin --------------------------------------------------------------------------------------
def test_martin_steps_in_order():
    events = martin_journey(MARTIN_START)
    assert [e["type"] for e in events] == MARTIN_TYPES
    assert [e["event_id"] for e in events] == [f"martin-{i:02d}" for i in range(1, 12)]
    times = [event_ms(e["event_time"]) for e in events]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] == (MARTIN_START - EPOCH) // timedelta(milliseconds=1)
    for event in events:
        assert touchpoint_problem(orjson.dumps(event)) is None, event


def test_martin_story_content():
    ev = {e["type"]: e for e in martin_journey(MARTIN_START)}
    # e-mail on the metro: the e-mail address as the ESP holds it, plus his phone browser's cookie
    assert ev["email_open"]["channel"] == "email"
    assert ev["email_open"]["ids"]["email"].strip().lower() == "martin@example.com"
    assert ev["email_open"]["ids"]["cookie"] == ev["click"]["ids"]["cookie"]
    # the banner about a little-known feature, on autonews.example, with UTM on the landing URL
    for step in ("impression", "click"):
        assert ev[step]["channel"] == "display"
        assert ev[step]["publisher"] == "autonews.example"
    assert "night-assist" in ev["impression"]["properties"]["creative"]
    landing = ev["click"]["context"]["url"]
    assert landing.startswith("https://brand.example/") and "utm_source=autonews" in landing
    assert "utm_medium=display" in landing
    assert ev["page_view"]["context"]["url"] == landing
    assert ev["price_view"]["properties"]["price"] == 32900.0
    assert "lead" not in ev                                          # he leaves
    # consent: push only, with his quiet hours
    consent = ev["consent"]["properties"]
    assert consent["channel"] == "push" and consent["opt_in"] is True
    assert consent["quiet_hours"] == "21:00-08:00"
    # near the dealership with the app's device id and account
    for step in ("geofence_enter", "store_visit", "push_open"):
        assert ev[step]["ids"] == {"device": "d-1", "user": "u-42"}
    assert ev["store_visit"]["context"]["store_id"] == "paris-15"
    assert ev["store_visit"]["context"]["beacon_id"]
    assert ev["geofence_enter"]["context"]["store_id"] == "paris-15"
    # the offer, opened outside his quiet hours
    assert ev["push_open"]["channel"] == "push"
    assert ev["push_open"]["properties"]["offer_code"] == OFFER_CODE == "XPGJRL"
    push_local = datetime.fromtimestamp(event_ms(ev["push_open"]["event_time"]) / 1000, PARIS)
    assert 8 <= push_local.hour < 21
    # days later: the purchase at the store, identified by loyalty card and e-mail
    purchase = ev["purchase"]
    assert purchase["channel"] == "store"
    assert purchase["ids"] == {"loyalty": "L-77", "email": "martin@example.com"}
    assert purchase["properties"]["revenue"] == 32900.0
    assert purchase["properties"]["currency"] == "EUR"
    assert purchase["properties"]["offer_code"] == OFFER_CODE
    assert purchase["context"]["store_id"] == "paris-15"
    gap = event_ms(purchase["event_time"]) - event_ms(ev["push_open"]["event_time"])
    assert gap >= 2 * 86_400_000
    # the paths link up: e-mail <-> cookie, device/user <-> e-mail, loyalty <-> e-mail
    assert ev["consent"]["ids"]["email"] == "martin@example.com"


def test_martin_uses_both_time_forms_and_real_offsets():
    events = martin_journey(MARTIN_START)
    forms = Counter(type(e["event_time"]).__name__ for e in events)
    assert forms["int"] >= 3 and forms["str"] >= 3
    offsets = {datetime.fromisoformat(e["event_time"]).utcoffset()
               for e in events if isinstance(e["event_time"], str)}
    assert timedelta(0) in offsets and timedelta(hours=1) in offsets   # ESP in UTC, tags in Paris


def test_martin_is_deterministic_and_holds_for_any_start():
    assert martin_journey(MARTIN_START) == martin_journey(MARTIN_START)
    naive = martin_journey(MARTIN_START.replace(tzinfo=None))
    assert naive == martin_journey(MARTIN_START)                       # naive start means UTC
    for start in (datetime(2026, 11, 20, 22, 30, tzinfo=UTC),          # late evening
                  datetime(2026, 3, 28, 9, 0, tzinfo=UTC),             # DST change that weekend
                  datetime(2026, 7, 1, 4, 0, tzinfo=PARIS)):
        events = martin_journey(start)
        times = [event_ms(e["event_time"]) for e in events]
        assert times == sorted(times)
        push = next(e for e in events if e["type"] == "push_open")
        hour = datetime.fromtimestamp(event_ms(push["event_time"]) / 1000, PARIS).hour
        assert 8 <= hour < 21, start


# -- population ----------------------------------------------------------------------------------
def test_population_is_deterministic_per_seed():
    def digest(seed: int) -> str:
        h = hashlib.sha256()
        for event in Population(400, seed=seed, start=START).events():
            h.update(orjson.dumps(event))
        return h.hexdigest()

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def test_population_is_deterministic_across_processes():
    code = ("import hashlib, orjson; from datetime import datetime, timezone; "
            "from streams.simulate import Population; h = hashlib.sha256(); "
            "[h.update(orjson.dumps(e)) for e in Population(300, seed=9, "
            "start=datetime(2026, 11, 16, tzinfo=timezone.utc)).events()]; print(h.hexdigest())")
    outputs = set()
    for hash_seed in ("0", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed)
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout.strip()
        outputs.add(out)
    assert len(outputs) == 1


def test_population_people_do_not_depend_on_population_size():
    small = dict(Population(60, seed=3, start=START).journeys())
    large = dict(Population(240, seed=3, start=START).journeys())
    assert small == {i: large[i] for i in range(60)}


def test_population_event_order_window_and_fields(population_events):
    events = population_events
    assert len(events) > 10_000
    start_ms = (START - EPOCH) // timedelta(milliseconds=1)
    end_ms = start_ms + 14 * 86_400_000
    previous = start_ms
    for event in events:
        for name in ("event_id", "event_time", "type"):
            assert event.get(name) not in (None, ""), (name, event)
        t = event_ms(event["event_time"])
        assert previous <= t < end_ms, event
        previous = t
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)


def test_population_events_are_contract_touchpoints(population_events):
    problems = Counter()
    for event in population_events:
        problem = touchpoint_problem(orjson.dumps(event))
        if problem:
            problems[problem] += 1
    assert not problems
    context_keys = {k for e in population_events for k in e["context"]}
    # context stays within the fields of the Avro contract
    assert context_keys <= {"url", "referrer", "store_id", "beacon_id", "tz", "user_agent",
                            "lat", "lon"}


def test_population_has_both_event_time_forms_with_several_offsets(population_events):
    forms = Counter(type(e["event_time"]).__name__ for e in population_events)
    assert forms["int"] > 0.15 * len(population_events)
    assert forms["str"] > 0.3 * len(population_events)
    offsets = {datetime.fromisoformat(e["event_time"]).utcoffset()
               for e in population_events if isinstance(e["event_time"], str)}
    assert {timedelta(0), timedelta(hours=1), timedelta(hours=4), timedelta(hours=-4)} <= offsets


def test_population_conversion_count_near_configured_rate():
    profiles = 4000
    for rate in (0.08, 0.2):
        purchases = Counter()
        for index, events in Population(profiles, seed=21, start=START,
                                        conversion_rate=rate).journeys():
            purchases[index] = sum(e["type"] == "purchase" for e in events)
        assert set(purchases.values()) <= {0, 1}           # a converter buys exactly once
        observed = sum(purchases.values()) / profiles
        assert abs(observed - rate) < 0.02, (rate, observed)


def test_population_conversion_rate_extremes():
    none = list(Population(200, seed=2, start=START, conversion_rate=0.0).events())
    assert not any(e["type"] == "purchase" for e in none)
    everyone = Population(200, seed=2, start=START, conversion_rate=1.0)
    for _, events in everyone.journeys():
        assert sum(e["type"] == "purchase" for e in events) == 1


def test_population_revenue_leads_and_funnel(population_events):
    types = Counter(e["type"] for e in population_events)
    for etype in ("impression", "click", "email_open", "email_click", "page_view", "product_view",
                  "price_view", "cart_add", "checkout", "purchase", "lead", "store_visit",
                  "geofence_enter", "app_open", "push_open", "sms_click", "identify", "consent"):
        assert types[etype] > 0, etype
    assert types["page_view"] > types["purchase"] * 10
    assert types["cart_add"] > types["checkout"] >= types["purchase"] * 0.5
    for event in population_events:
        if event["type"] == "purchase":
            props = event["properties"]
            assert props["revenue"] > 0 and props["currency"] == "EUR" and props["order_id"]
            assert isinstance(props["revenue"], float)
    store_sales = [e for e in population_events
                   if e["type"] == "purchase" and e["channel"] == "store"]
    assert store_sales and all(e["context"]["store_id"] and "loyalty" in e["ids"]
                               for e in store_sales)
    leads = [e for e in population_events if e["type"] == "lead"]
    assert all("email" in e["ids"] for e in leads)


def test_population_channel_mix_and_publishers(population_events):
    channels = Counter(e.get("channel") for e in population_events)
    assert CHANNELS <= set(channels)
    assert channels[None] > 0                        # some page views leave derivation to ingest
    publishers = defaultdict(set)
    for event in population_events:
        if event.get("publisher"):
            publishers[event["channel"]].add(event["publisher"])
    for channel in ("search", "display", "social", "video", "affiliate"):
        assert len(publishers[channel]) >= 3, channel
    campaigns = {e["campaign"] for e in population_events if e.get("campaign")}
    assert len(campaigns) >= 8


def test_population_page_views_with_and_without_campaign_parameters(population_events):
    urls = [e["context"].get("url", "") for e in population_events if e["type"] == "page_view"]
    tagged = [u for u in urls if "utm_" in u or "gclid=" in u or "msclkid=" in u]
    click_id_only = [u for u in tagged if "utm_" not in u]
    assert len(tagged) > 0.05 * len(urls)
    assert len(urls) - len(tagged) > 0.3 * len(urls)
    assert click_id_only                                      # auto-tagged search clicks


def test_population_consent_events(population_events):
    consents = [e for e in population_events if e["type"] == "consent"]
    targets = Counter((e["properties"]["channel"], e["properties"]["opt_in"]) for e in consents)
    assert targets[("push", True)] and targets[("push", False)]
    assert targets[("email", True)] and targets[("email", False)]
    assert targets[("sms", True)]
    assert any("quiet_hours" in e["properties"] for e in consents)
    assert any("max_per_day" in e["properties"] for e in consents)
    for event in consents:
        assert event["ids"] and isinstance(event["properties"]["opt_in"], bool)
        if "quiet_hours" in event["properties"]:
            assert re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", event["properties"]["quiet_hours"])


def test_population_raw_personal_identifiers_as_producers_send_them(population_events):
    emails = [e["ids"]["email"] for e in population_events if "email" in e["ids"]]
    phones = [e["ids"]["phone"] for e in population_events if "phone" in e["ids"]]
    assert emails and phones
    assert all("@" in v for v in emails)
    assert any(v != v.strip().lower() for v in emails)        # typed: case and spaces vary
    assert any(" " in v for v in phones) and any(" " not in v for v in phones)
    assert all(re.fullmatch(r"\+[\d ]{8,20}", v) for v in phones)


def test_population_identifiers_belong_to_one_person_each():
    owner: dict[tuple[str, str], int] = {}
    for index, events in Population(2000, seed=4, start=START).journeys():
        for event in events:
            for id_type, value in event["ids"].items():
                key = (id_type, norm_id(id_type, value))
                assert owner.setdefault(key, index) == index, key


def test_population_cross_device_people_get_linked():
    linked = unlinked = 0
    for _, events in Population(2000, seed=8, start=START).journeys():
        cookies = {e["ids"]["cookie"] for e in events if "cookie" in e["ids"]}
        if len(cookies) < 2:
            continue
        # union the identifiers that appear together in one event
        parent: dict = {}

        def find(x):
            while parent.setdefault(x, x) != x:
                x = parent[x]
            return x

        for event in events:
            keys = [(k, norm_id(k, v)) for k, v in event["ids"].items()]
            for a, b in zip(keys, keys[1:]):
                parent[find(a)] = find(b)
        roots = {find(("cookie", c)) for c in cookies}
        if len(roots) == 1:
            linked += 1
        else:
            unlinked += 1
    assert linked > 50
    assert linked > unlinked > 0          # most get linked, some never do


def test_population_cross_device_links_by_login_and_by_email_click():
    by_login = by_email = 0
    for _, events in Population(1500, seed=8, start=START).journeys():
        cookies = {e["ids"]["cookie"] for e in events if "cookie" in e["ids"]}
        if len(cookies) < 2:
            continue
        login = {e["ids"]["cookie"] for e in events if e["type"] == "identify"}
        clicks = {e["ids"]["cookie"] for e in events if e["type"] == "email_click"}
        by_login += len(login) >= 1
        by_email += len(clicks) >= 1
    assert by_login > 20 and by_email > 20


def test_population_arguments_are_checked():
    with pytest.raises(ValueError):
        Population(-1, seed=1, start=START)
    with pytest.raises(ValueError):
        Population(10, seed=1, start=START, days=0)
    with pytest.raises(ValueError):
        Population(10, seed=1, start=START, conversion_rate=1.5)
    with pytest.raises(TypeError):
        Population(10, seed=1, start="2026-11-16")
    assert list(Population(0, seed=1, start=START).events()) == []
    one_day = list(Population(300, seed=1, start=START, days=1).events())
    assert one_day and all(event_ms(e["event_time"]) < event_ms(START.isoformat()) + 86_400_000
                           for e in one_day)


def test_population_generation_speed():
    """The demo and the benches generate 100k events: keep it far below two seconds. The bar here
    is loose (a busy CI machine) and only catches an order-of-magnitude regression."""
    population = Population(4000, seed=1, start=START)
    began = time.perf_counter()
    count = sum(1 for _ in population.events())
    elapsed = time.perf_counter() - began
    assert count > 15_000
    assert count / elapsed > 15_000, f"{count / elapsed:,.0f} events/s"


# -- malformed records ---------------------------------------------------------------------------
def _registered_schema_ids() -> set[int]:
    return set(json.loads((ROOT / "schemas" / "registry.json").read_text())["schemas"].values())


def test_malformed_events_are_each_invalid():
    records = malformed_events(60, seed=3)
    assert len(records) == 60
    assert all(isinstance(r, bytes) for r in records)
    for i, raw in enumerate(records):
        assert touchpoint_problem(raw) is not None, (MALFORMED_KINDS[i % len(MALFORMED_KINDS)], raw)
        assert b"\n" not in raw and b"\r" not in raw


def test_malformed_events_cover_every_kind():
    records = malformed_events(len(MALFORMED_KINDS), seed=5)
    kinds = dict(zip(MALFORMED_KINDS, records))
    assert set(kinds) >= {"truncated_json", "missing_event_id", "naive_timestamp", "wrong_types",
                          "binary_garbage", "avro_unknown_schema"}
    assert touchpoint_problem(kinds["truncated_json"]) == "not JSON"
    assert touchpoint_problem(kinds["missing_event_id"]) == "missing event_id"
    assert "naive" in touchpoint_problem(kinds["naive_timestamp"])
    assert touchpoint_problem(kinds["wrong_types"]) not in (None, "not JSON")
    assert touchpoint_problem(kinds["empty_event_id"]) == "event_id is not a non-empty string"
    assert kinds["empty"] == b""
    # Confluent wire format: magic byte 0, then a 4-byte schema id that nobody registered
    avro = kinds["avro_unknown_schema"]
    assert avro[0] == 0 and len(avro) > 5
    assert int.from_bytes(avro[1:5], "big") not in _registered_schema_ids()
    garbage = kinds["binary_garbage"]
    assert garbage[:1] not in (b"{", b"[", b"\x00")


def test_malformed_events_are_deterministic():
    assert malformed_events(25, seed=1) == malformed_events(25, seed=1)
    assert malformed_events(25, seed=1) != malformed_events(25, seed=2)
    assert malformed_events(0, seed=1) == []
    with pytest.raises(ValueError):
        malformed_events(-1, seed=1)


# -- outputs -------------------------------------------------------------------------------------
def test_write_jsonl_round_trip(tmp_path):
    events = martin_journey(MARTIN_START) + list(Population(50, seed=1, start=START).events())
    bad = malformed_events(10, seed=1)
    path = tmp_path / "out" / "touchpoints.jsonl"
    assert write_jsonl(events + bad, path) == len(events) + len(bad)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(events) + len(bad) + 1
    assert [orjson.loads(line) for line in lines[: len(events)]] == events
    assert lines[len(events):-1] == bad
    assert not [p for p in path.parent.iterdir() if p.name != path.name]   # no temp file left


def test_write_jsonl_refuses_a_multi_line_record_and_leaves_no_file(tmp_path):
    path = tmp_path / "x.jsonl"
    with pytest.raises(ValueError):
        write_jsonl([{"event_id": "a"}, b"two\nlines"], path)
    assert list(tmp_path.iterdir()) == []


def test_kafka_key_is_the_first_identifier():
    key = simulate._key
    events = {e["event_id"]: e for e in martin_journey(MARTIN_START)}
    assert key(events["martin-01"], None) == b"c-9"          # raw e-mail stays out of the key
    assert key(events["martin-08"], None) == b"d-1"
    assert key(events["martin-11"], None) == b"L-77"
    assert key({"ids": {"email": "a@example.com"}}, None) == b"a@example.com"
    assert key(events["martin-08"], "event_id") == b"martin-08"
    assert key(events["martin-08"], "user") == b"u-42"
    assert key(events["martin-08"], "loyalty") is None
    assert key(b"\x00garbage", None) is None


def test_module_imports_without_kafka():
    code = ("import sys; sys.modules['aiokafka'] = None; import streams.simulate as s; "
            "print(len(s.martin_journey(__import__('datetime').datetime(2026, 11, 20))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    assert out == "11"


@pytest.mark.e2e
def test_produce_sends_every_event_keyed(kafka):
    from aiokafka import AIOKafkaConsumer

    topic = "simulate.test"
    kafka.create_topics({topic: 3})
    events = martin_journey(MARTIN_START) + list(Population(300, seed=2, start=START).events())
    bad = malformed_events(5, seed=2)

    async def run() -> tuple[int, list]:
        sent = await simulate.produce(events + bad, kafka.url, topic)
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka.bootstrap,
                                    auto_offset_reset="earliest", group_id=None,
                                    enable_auto_commit=False)
        await consumer.start()
        records: list = []
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while len(records) < sent and asyncio.get_running_loop().time() < deadline:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        finally:
            await consumer.stop()
        return sent, records

    sent, records = asyncio.run(run())
    assert sent == len(events) + len(bad)
    assert len(records) == sent
    by_value = {r.value: r for r in records}
    for event in events:
        record = by_value[orjson.dumps(event)]
        assert record.key == simulate._key(event, None)
    partitions_of_cookie = defaultdict(set)
    for record in records:
        if record.key:
            partitions_of_cookie[record.key].add(record.partition)
    assert all(len(p) == 1 for p in partitions_of_cookie.values())
    assert len({r.partition for r in records}) == 3
