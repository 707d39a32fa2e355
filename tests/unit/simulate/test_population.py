"""streams.simulate Population: determinism, event shape, conversions, funnel, channels, ids."""
from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import orjson
import pytest

from streams.ingest.pii import hash_identifier
from streams.simulate import Population
from tests.unit.simulate.cases import EPOCH, ROOT, START, event_ms, touchpoint_problem

CHANNELS = {"search", "display", "social", "email", "affiliate", "video", "push", "sms", "app",
            "web", "store", "direct"}


@pytest.fixture(scope="module")
def population_events() -> list[dict]:
    return list(Population(3000, seed=11, start=START).events())


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
                key = (id_type, hash_identifier(id_type, value))
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
            keys = [(k, hash_identifier(k, v)) for k, v in event["ids"].items()]
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
