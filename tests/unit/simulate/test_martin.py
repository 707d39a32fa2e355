"""streams.simulate martin_journey: the steps, the story, time forms and offsets, determinism."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson

from streams.simulate import OFFER_CODE, martin_journey
from tests.unit.simulate.cases import EPOCH, MARTIN_START, UTC, event_ms, touchpoint_problem

PARIS = ZoneInfo("Europe/Paris")
MARTIN_TYPES = ["email_open", "impression", "click", "page_view", "price_view", "app_open",
                "consent", "geofence_enter", "store_visit", "push_open", "purchase"]


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
