"""The YAML rule language: the default pack and what each construct compiles to."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from streams.moments.rules import model as R
from streams.moments.rules.loader import (
    DEFAULT_PACK,
    check_main,
    load_default,
    load_pack,
    parse_distance,
    parse_duration,
)
from tests.unit.moments.rules_text import DAY, HOUR, MIN, PACK_DIR, load, predicate, rule

# --- the default pack ---

def test_default_pack_loads_every_rule():
    pack = load_default()
    assert [r.id for r in pack.rules] == [
        "near_store_offer", "price_seen_then_left", "out_of_stock_online_in_store",
        "cart_abandoned", "known_prospect_in_store", "repeated_interest", "search_click_to_price",
        "big_spender_in_store"]
    assert pack.lateness_ms == 5 * MIN
    # no settings.history: the longest window (30d interest of known_prospect_in_store) + lateness
    assert pack.history_ms == 30 * DAY + 5 * MIN
    assert pack.stores_file == str(PACK_DIR / "stores.csv")
    assert pack.inventory_file == str(PACK_DIR / "inventory.csv")
    assert Path(pack.stores_file).is_absolute()
    assert pack.source == str(DEFAULT_PACK)
    raw = yaml.safe_load(DEFAULT_PACK.read_text())
    assert pack.preferences == raw["preferences"]
    lines = DEFAULT_PACK.read_text().splitlines()
    for r in pack.rules:
        assert lines[r.line - 1].strip() == f"- id: {r.id}"


def test_default_pack_near_store_offer():
    r = load_default().rules[0]
    assert r.pattern == R.EventPattern(R.Predicate(
        conditions=(R.Condition("type", "in", ("geofence_enter", "store_visit")),),
        geofence=R.Geofence(within_m=500.0)))
    assert r.profile == R.ProfileCondition(identified=True)
    assert r.cooldown_ms == DAY and r.holdout_pct == 0.0
    assert r.action == R.Action(channels=("push", "sms"), code="XPGJRL",
                                payload={"offer": "today_only", "store_id": "{store_id}",
                                         "code": "{code}"})
    assert r.description.startswith("The phone passes one of our stores today")


def test_default_pack_absence_with_a_story():
    r = {r.id: r for r in load_default().rules}["price_seen_then_left"]
    assert r.pattern == R.AbsencePattern(
        after=R.Predicate((R.Condition("type", "eq", "price_view"),)),
        missing=R.Predicate((R.Condition("type", "in",
                                         ("lead", "cart_add", "checkout", "purchase")),)),
        within_ms=30 * MIN)
    assert r.action.story == "feature_followup" and r.action.channels == ()
    assert r.action.messages == (R.Message("banner-1", ("display", "social")),
                                 R.Message("interstitial-2", ("app", "web")),
                                 R.Message("video-3", ("video",)))
    assert r.action.payload == {"product_id": "{product_id}"}
    assert r.cooldown_ms == 3 * DAY


def test_default_pack_stock_count_sequence_and_profile():
    rules = {r.id: r for r in load_default().rules}
    stock = rules["out_of_stock_online_in_store"].pattern.match
    assert stock.conditions == (R.Condition("type", "in", ("product_view", "price_view")),
                                R.Condition("properties.in_stock", "eq", False))
    assert stock.in_stock == R.StockJoin("properties.product_id", "nearest", 30.0, 1)
    assert rules["cart_abandoned"].pattern.same == ("properties.product_id",)
    assert rules["cart_abandoned"].pattern.within_ms == HOUR
    prospect = rules["known_prospect_in_store"]
    assert prospect.pattern.match.conditions[1] == R.Condition("context.store_id", "exists", True)
    assert prospect.profile == R.ProfileCondition(True, 2, 30 * DAY)
    count = rules["repeated_interest"]
    assert count.pattern == R.CountPattern(
        R.Predicate((R.Condition("type", "in", ("product_view", "price_view")),)),
        at_least=3, within_ms=7 * DAY, same=("properties.product_id",))
    assert count.holdout_pct == 0.1
    seq = rules["search_click_to_price"].pattern
    assert seq.within_ms == 20 * MIN
    assert seq.steps == (
        R.Predicate((R.Condition("type", "eq", "click"), R.Condition("channel", "eq", "search"))),
        R.Predicate((R.Condition("type", "eq", "price_view"),
                     R.Condition("properties.price", "gte", 20000))))


def test_check_main_on_the_default_pack():
    out = io.StringIO()
    assert check_main(str(DEFAULT_PACK), out=out) == 0
    assert out.getvalue() == (f"{DEFAULT_PACK}: 8 rules OK: near_store_offer, "
                              "price_seen_then_left, out_of_stock_online_in_store, cart_abandoned, "
                              "known_prospect_in_store, repeated_interest, search_click_to_price, "
                              "big_spender_in_store\n")


# --- durations and distances ---

@pytest.mark.parametrize("value, ms", [("500ms", 500), ("30s", 30_000), ("5m", 5 * MIN),
                                       ("1h", HOUR), ("1d", DAY), ("2w", 14 * DAY),
                                       ("1.5h", 90 * MIN), (0, 0), (1234, 1234),
                                       (" 10 s ", 10_000)])
def test_parse_duration(value, ms):
    assert parse_duration(value) == ms


@pytest.mark.parametrize("value", ["30x", "m", "-5m", -1, 1.5, True, None, "1 hour", [1]])
def test_parse_duration_rejects(value):
    with pytest.raises(ValueError, match=r"is not a duration \(use 500ms, 30s, 5m, 1h, 1d, 2w\)"):
        parse_duration(value)


@pytest.mark.parametrize("value, metres", [("500m", 500.0), ("2km", 2000.0), ("1.5km", 1500.0),
                                           (250, 250.0), (12.5, 12.5), (0, 0.0)])
def test_parse_distance(value, metres):
    assert parse_distance(value) == metres


@pytest.mark.parametrize("value", ["5 miles", "km", -3, True, None, float("nan")])
def test_parse_distance_rejects(value):
    with pytest.raises(ValueError, match="is not a distance"):
        parse_distance(value)


def test_parse_distance_can_require_a_unit():
    assert parse_distance("30km", unit_required=True) == 30_000.0
    with pytest.raises(ValueError, match=r"\(use 500m, 2km\)$"):
        parse_distance(30, unit_required=True)


# --- constructs ---

def test_predicate_fields_scalars_lists_and_operators():
    p = predicate("{type: page_view, channel: [email, sms], campaign: {prefix: winter-},"
                  " publisher: {ne: spam.example}}")
    assert p.conditions == (R.Condition("type", "eq", "page_view"),
                            R.Condition("channel", "in", ("email", "sms")),
                            R.Condition("campaign", "prefix", "winter-"),
                            R.Condition("publisher", "ne", "spam.example"))
    assert p.geofence is None and p.in_stock is None


def test_predicate_properties_and_context_operators():
    p = predicate("{type: purchase, properties: {revenue: {gt: 100, lte: 5000},"
                  " currency: [EUR, USD], order_id: {exists: true}, sku: {not_in: [a, b]}},"
                  " context: {url: {contains: /suv}, store_id: paris-15}}")
    assert p.conditions == (R.Condition("type", "eq", "purchase"),
                            R.Condition("properties.revenue", "gt", 100),
                            R.Condition("properties.revenue", "lte", 5000),
                            R.Condition("properties.currency", "in", ("EUR", "USD")),
                            R.Condition("properties.order_id", "exists", True),
                            R.Condition("properties.sku", "not_in", ("a", "b")),
                            R.Condition("context.url", "contains", "/suv"),
                            R.Condition("context.store_id", "eq", "paris-15"))


def test_geofence_with_store_ids_and_in_stock_defaults():
    p = predicate("{type: geofence_enter, geofence: {within: 2km, stores: [paris-15, paris-8]}}")
    assert p.geofence == R.Geofence(2000.0, ("paris-15", "paris-8"))
    p = predicate("{type: product_view, geofence: {within: 300}, in_stock: {}}")
    assert p.geofence == R.Geofence(300.0, None)
    assert p.in_stock == R.StockJoin()
    p = predicate("{type: product_view, in_stock: {product: properties.sku, store: event,"
                  " within: 500m, min_quantity: 2}}")
    assert p.in_stock == R.StockJoin("properties.sku", "event", 0.5, 2)


def test_sequence_count_and_absence_patterns():
    seq = rule("""
        - id: seq
          when:
            sequence:
              steps: [{type: a}, {type: b}, {type: c}]
              within: 90s
              same: [properties.product_id, context.store_id]
          action: {channels: [web]}
        """).pattern
    assert isinstance(seq, R.SequencePattern) and seq.kind == "sequence"
    assert [s.conditions[0].value for s in seq.steps] == ["a", "b", "c"]
    assert seq.within_ms == 90_000 and seq.same == ("properties.product_id", "context.store_id")
    count = rule("- id: c\n  when: {count: {match: {type: a}, at_least: 2, within: 1d}}\n"
                 "  action: {channels: [web]}\n").pattern
    assert count == R.CountPattern(R.Predicate((R.Condition("type", "eq", "a"),)), 2, DAY)
    absence = rule("- id: x\n  when: {absence: {after: {type: a}, missing: {type: b}, within: 2w,"
                   " same: [campaign]}}\n  action: {channels: [web]}\n").pattern
    assert absence.within_ms == 14 * DAY and absence.same == ("campaign",)
    assert absence.missing == R.Predicate((R.Condition("type", "eq", "b"),))


def test_rule_options_profile_holdout_cooldown_and_action():
    r = rule("""
        - id: full-rule_2
          description: Everything set
          when: {event: {type: a}}
          profile: {identified: false, min_interest: 1, interest_window: 3d}
          cooldown: 12h
          holdout: 10%
          action:
            channels: [email]
            code: 12345
            payload:
              {n: 3, flag: true, ratio: 0.5,
               text: "see {product_id} at {store_id} ({code}, {rule}, {event_id}, {profile_id})"}
        """)
    assert r.id == "full-rule_2" and r.description == "Everything set"
    assert r.profile == R.ProfileCondition(False, 1, 3 * DAY)
    assert r.cooldown_ms == 12 * HOUR and r.holdout_pct == pytest.approx(0.1)
    assert r.line == 4
    assert r.action.code == "12345"
    assert r.action.payload == {"n": "3", "flag": "true", "ratio": "0.5",
                                "text": "see {product_id} at {store_id} "
                                        "({code}, {rule}, {event_id}, {profile_id})"}
    defaults = rule("- id: d\n  when: {event: {type: a}}\n  action: {channels: [web]}\n")
    assert (defaults.cooldown_ms, defaults.holdout_pct, defaults.profile,
            defaults.description) == (0, 0.0, None, "")
    assert rule("- id: h\n  when: {event: {type: a}}\n  holdout: 0.25\n"
                "  action: {channels: [web]}\n").holdout_pct == 0.25


def test_story_messages_with_payloads():
    r = rule("""
        - id: story
          when: {event: {type: a}}
          action:
            story: onboarding
            code: WELCOME
            messages:
              - {id: one, channels: [email], payload: {step: 1, offer: "{code}"}}
              - {id: two, channels: [push, sms]}
        """)
    assert r.action.story == "onboarding" and r.action.channels == ()
    assert r.action.messages == (R.Message("one", ("email",), {"step": "1", "offer": "{code}"}),
                                 R.Message("two", ("push", "sms"), {}))


def test_settings_history_and_derived_history():
    pack = load("version: 1\nsettings: {lateness: 1m, history: 90d}\nrules:\n"
                "  - {id: a, when: {event: {type: a}}, action: {channels: [web]}}\n")
    assert (pack.lateness_ms, pack.history_ms) == (MIN, 90 * DAY)
    assert pack.stores_file is None and pack.inventory_file is None and pack.preferences == {}
    derived = load("version: 1\nsettings: {lateness: 2m}\nrules:\n"
                   "  - {id: a, when: {count: {match: {type: a}, at_least: 2, within: 2h}},"
                   " action: {channels: [web]}}\n"
                   "  - {id: b, when: {event: {type: a}},"
                   " profile: {min_interest: 0, interest_window: 9d},"
                   " action: {channels: [web]}}\n")
    # b's interest window does not count: min_interest is 0
    assert derived.history_ms == 2 * HOUR + 2 * MIN
    only_events = load("version: 1\nrules:\n"
                       "  - {id: a, when: {event: {type: a}}, action: {channels: [web]}}\n")
    assert only_events.history_ms == only_events.lateness_ms == 5 * MIN


def test_reference_paths_are_relative_to_the_pack_file(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "s.csv").write_text("store_id,name,lat,lon,tz\nhere,Here,1.0,2.0,UTC\n")
    (tmp_path / "ref" / "i.csv").write_text("store_id,product_id,quantity\nhere,p,1\n")
    pack_file = tmp_path / "pack.yaml"
    pack_file.write_text("version: 1\nreference: {stores: ref/s.csv, inventory: ref/i.csv}\n"
                         "rules:\n  - {id: a,"
                         " when: {event: {type: a, geofence: {within: 1km, stores: [here]}}},"
                         " action: {channels: [web]}}\n")
    pack = load_pack(pack_file)
    assert pack.stores_file == str((tmp_path / "ref" / "s.csv").resolve())
    assert pack.inventory_file == str((tmp_path / "ref" / "i.csv").resolve())
    assert pack.source == str(pack_file)
    with pytest.raises(FileNotFoundError):
        load_pack(tmp_path / "missing.yaml")
