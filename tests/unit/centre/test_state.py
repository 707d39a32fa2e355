"""What the page shows, read from real chDB: a replayed simulation with the Martin journey, and
the preference records the centre made (`choices.records`), as the touchpoints ingest makes of
them.

Martin opted in to push in the app (a consent touchpoint, not the centre), got the near-store
offer, then changed his choices in the centre; his link names his e-mail, hashed. The page's
state must fold both sources, show the offer with its rule's description, and find nothing for a
stranger."""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from sinks.clickhouse import close, connect
from streams import simulate
from streams.centre.choices import CHANNELS, current, defaults, from_json, records
from streams.centre.state import Pending, PersonReader
from streams.ingest.pii import hash_identifier
from streams.moments.rules.loader import load_default
from streams.preferences.config import GateConfig
from streams.preferences.records import preference_touchpoint
from streams.simulate.martin import MARTIN_EMAIL
from tests.unit.cli.test_cli import run

START = datetime(2026, 11, 2, tzinfo=timezone.utc)
MARTIN = "email:" + hash_identifier("email", MARTIN_EMAIL)
SAVED_AT = int(datetime(2026, 11, 20, tzinfo=timezone.utc).timestamp() * 1000)
PACK = load_default()
BASE = defaults(GateConfig.from_dict(PACK.preferences))
DESCRIPTIONS = {rule.id: rule.description for rule in PACK.rules}


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("centre")
    journeys = base / "journeys.jsonl"
    # after the offer, Martin tells the centre: e-mail yes, push no, and electric cars; the
    # records become touchpoints as the worker's ingest makes them, after his journey
    chosen = from_json({"channels": {"email": True, "push": False}, "topics": ["electric"],
                        "quiet_hours": "22:30-07:00"}, BASE)
    saved = [preference_touchpoint(r) for r in records(MARTIN, chosen, SAVED_AT)]
    simulate.write_jsonl([*simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=50, seed=5, start=START).events()), *saved], journeys)
    url = f"chdb://{base / 'ch'}"
    done = run("replay", str(journeys), "--clickhouse", url, "--out", str(base / "out"))
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
def reader(replayed):
    client = connect(replayed)
    yield PersonReader(client, DESCRIPTIONS)
    close(client)


def test_the_page_state_folds_every_source_of_the_persons_choices(reader):
    person = asyncio.run(reader.read(MARTIN))
    sources = {props.get("source") for _t, _e, kind, props in person.events if kind == "consent"}
    assert sources == {"preference_centre", "app-onboarding"}  # the centre and the app
    shown = current(person.events, BASE)
    assert shown.channels["email"] is True and shown.channels["push"] is False
    assert (shown.quiet_hours, shown.topics) == ("22:30-07:00", ("electric",))
    assert shown.since["push"] == SAVED_AT


def test_the_last_messages_say_why(reader):
    person = asyncio.run(reader.read(MARTIN))
    offers = [m for m in person.messages if m["rule"] == "near_store_offer"]
    assert offers and offers[0]["channel"] == "push"
    assert offers[0]["why"] == DESCRIPTIONS["near_store_offer"]
    assert [m["at_ms"] for m in person.messages] == sorted(
        (m["at_ms"] for m in person.messages), reverse=True)


def test_a_stranger_has_no_history_and_the_defaults(reader):
    person = asyncio.run(reader.read("email:" + "0" * 64))
    assert person.events == [] and person.messages == []
    assert current(person.events, BASE) == BASE


def test_pending_saves_show_until_clickhouse_holds_them(reader):
    person = asyncio.run(reader.read(MARTIN))
    pending = Pending(keep_s=60)
    stored = [(SAVED_AT + 1, "pref-new", "consent", {"channel": "sms", "opt_in": True})]
    pending.add(MARTIN, stored, now=0)
    merged = pending.merged(MARTIN, person.events, now=1)
    assert current(merged, BASE).channels["sms"] is True
    # once ClickHouse holds the event, the pending copy is dropped
    assert pending.merged(MARTIN, person.events + stored, now=2) == person.events + stored
    assert pending.merged(MARTIN, person.events, now=3) == person.events
    pending.add(MARTIN, stored, now=0)
    assert pending.merged(MARTIN, person.events, now=61) == person.events  # kept at most keep_s


def test_clickhouse_unreadable_gives_no_history_not_an_error():
    class Broken:
        def query(self, *_a, **_k):
            raise ConnectionError("down")

    person = asyncio.run(PersonReader(Broken(), {}).read(MARTIN))
    assert person.events == [] and person.messages is None
    assert set(current(person.events, BASE).channels) == set(CHANNELS)


def test_a_new_save_replaces_the_pending_one():
    pending = Pending(keep_s=60)
    first = [(1, "pref-a", "consent", {"channel": "push", "opt_in": True})]
    second = [(2, "pref-b", "consent", {"channel": "push", "opt_in": False})]
    for _ in range(1000):
        pending.add(MARTIN, first, now=0)
    pending.add(MARTIN, second, now=1)
    assert pending.merged(MARTIN, [], now=2) == second
