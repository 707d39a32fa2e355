"""Reference feeds: inventory records from the compacted topic, preference-centre records."""
from __future__ import annotations

import orjson
import pytest

from schemas.codec import DecodeError
from streams.ingest import NOT_A_SOURCE, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.feeds import apply_inventory, inventory_key
from streams.moments.reference import Inventory
from streams.pipeline import Pipeline
from streams.preferences.records import preference_raw, preference_touchpoint
from tests.unit.moments.test_engine import NEAR_PARIS_15, at, by_rule, ev, run

PREF = {"ids": {"email": "Someone@Example.com"}, "channel": "push", "opt_in": True,
        "quiet_hours": "22:00-07:00", "updated_at": "2026-11-01T10:00:00+01:00"}


def test_inventory_records_and_tombstones():
    inv = Inventory()
    assert apply_inventory(inv, inventory_key("s1", "p1"), orjson.dumps(
        {"store_id": "s1", "product_id": "p1", "quantity": 4}))
    assert inv.quantity("s1", "p1") == 4
    assert apply_inventory(inv, inventory_key("s1", "p1"), None) and inv.quantity("s1", "p1") == 0
    assert not apply_inventory(inv, b"k", b"{not json")
    assert not apply_inventory(inv, b"k", orjson.dumps({"store_id": "s1", "quantity": -1}))
    assert list(inv.rows()) == [("s1", "p1", 0)]


def test_preference_record_becomes_a_deterministic_consent_touchpoint():
    tp = preference_touchpoint(PREF)
    assert (tp["type"] == "consent"
            and tp["event_id"] == preference_touchpoint(dict(PREF))["event_id"])
    assert tp["properties"] == {"channel": "push", "opt_in": True, "quiet_hours": "22:00-07:00",
                                "source": "preference_centre"}
    with pytest.raises(ValueError, match="needs 'ids'"):
        preference_touchpoint({"channel": "push", "opt_in": True, "updated_at": 1})
    with pytest.raises(DecodeError, match="preference record: .*'opt_in'"):
        preference_raw(orjson.dumps({**PREF, "opt_in": "yes"}))


def test_bad_preference_records_are_dead_lettered_with_their_reason_and_bytes():
    raws = [(orjson.dumps(PREF), "preferences", 0, 0), (b"{oops", "preferences", 0, 1),
            (orjson.dumps({**PREF, "updated_at": None}), "preferences", 0, 2)]
    good, dead = ingest_batch(raws, source_key=SOURCE, source=NOT_A_SOURCE, convert=preference_raw)
    assert [tp[SOURCE] for tp in good] == [NOT_A_SOURCE]
    assert "@" not in orjson.dumps(good[0]).decode()  # the e-mail is hashed like any touchpoint
    assert [(d["error"], d["offset"]) for d in dead] == [("decode", 1), ("validation", 2)]
    assert "updated_at" in dead[1]["reason"]


def test_a_preference_record_opts_a_person_in_without_moving_the_watermark():
    p = Pipeline()
    ids = {"device": "d-1", "user": "u-1"}
    record = {"ids": ids, "channel": "push", "opt_in": True, "updated_at": at(9)}
    good, _ = ingest_batch([(orjson.dumps(record), "preferences", 0, 0)], source_key=SOURCE,
                           source=NOT_A_SOURCE, convert=preference_raw)
    p.process(good)
    assert p.watermark.value < 0  # untouched
    out = run(p, [ev("g1", at(18), "geofence_enter", "store", ids, NEAR_PARIS_15)])
    assert [t["channel"] for t in by_rule(out, "near_store_offer")[0]] == ["push"]
