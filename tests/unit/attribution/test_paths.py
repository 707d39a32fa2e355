"""Closed paths for the data-driven models: conversions, journeys closing without one, the
counts in ClickHouse, and markov / shapley credit read back from them."""
from __future__ import annotations

import pytest

from sinks.clickhouse import connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from streams.attribution import DAY_MS, AttributionConfig
from streams.cli.attribution import credit_by, with_payouts
from streams.pipeline import Pipeline
from streams.worker.outputs import table_rows
from tests.unit.moments.test_engine import at, ev, run


def touch(event_id, t, channel, cookie="c-1"):
    return ev(event_id, t, "click", channel, ids={"cookie": cookie})


def later(t):
    """Someone else's page view an hour after `t`: the watermark passes `t`, so a conversion there
    is credited (credit waits for every earlier event, within the allowed lateness)."""
    return ev("tick", t + 3_600_000, "page_view", "web", ids={"cookie": "someone-else"})


def test_a_conversion_closes_its_path_with_transitions_and_channel_set():
    p = Pipeline()
    out = run(p, [touch("a", at(9), "email"), touch("b", at(10), "display"),
                  ev("buy", at(11), "purchase", "web", ids={"cookie": "c-1"}, revenue=100.0),
                  later(at(11))])
    (path,) = out.paths
    assert (path["path_id"], path["converted"], path["revenue"], path["channels"]) == (
        "buy", 1, 100.0, ["email", "display"])
    assert path["channel_set"] == ["display", "email"]
    first = sorted(tuple(t[1:]) for t in path["transitions"] if t[0] == 1)
    assert first == [("display", "conversion", 1), ("email", "display", 1), ("start", "email", 1)]
    assert ("email>display", "conversion", 1) in {tuple(t[1:]) for t in path["transitions"]
                                                  if t[0] == 2}


def test_a_journey_without_conversion_closes_after_the_lookback_on_event_time():
    p = Pipeline(attribution_config=AttributionConfig(lookback_days=2))
    assert run(p, [touch("a", at(9), "search"), touch("b", at(10), "video")]).paths == []
    # the watermark must pass the last touch + 2 days (+ the 5 min lateness)
    assert run(p, [touch("x", at(10, days=2), "web", cookie="other")]).paths == []
    out = run(p, [touch("y", at(10, 6, days=2), "web", cookie="other")])
    (path,) = out.paths
    assert (path["converted"], path["channels"], path["closed_at"]) == (0, ["search", "video"],
                                                                        at(10, days=2))
    assert path["path_id"].startswith("open:") and path["transitions"][-1][2] == "null"


def test_a_new_touch_postpones_the_close_and_a_conversion_cancels_it():
    p = Pipeline(attribution_config=AttributionConfig(lookback_days=1))
    run(p, [touch("a", at(9), "search"), touch("b", at(9, days=1), "email")])
    assert run(p, [touch("x", at(9, 30, days=1), "web", cookie="o")]).paths == []  # b moved it
    out = run(p, [ev("buy", at(12, days=1), "purchase", "web", ids={"cookie": "c-1"}, revenue=5.0),
                  touch("y", at(12, days=3), "web", cookie="o")])
    # c-1's journey converted: only the other person's (x, a day and a half old) closes open
    assert [(x["path_id"].split(":")[-1], x["converted"]) for x in out.paths] == [
        ("buy", 1), ("x", 0)]
    pending = [v for k, v in p.states["timers"].backing.items() if not k.startswith("~")]
    assert [v["k"] for v in pending if v["k"] != "traits"] == ["path"]  # y's, two days ahead


def test_lookback_per_conversion_type():
    cfg = AttributionConfig(lookback_days=30, lookback_days_by_type=(("lead", 1),))
    p = Pipeline(attribution_config=cfg)
    out = run(p, [touch("old", at(9), "display"), touch("new", at(9, days=2), "email"),
                  ev("l", at(10, days=2), "lead", "web", ids={"cookie": "c-1"}),
                  later(at(10, days=2))])
    assert [x["channels"] for x in out.paths] == [["email"]]  # the display touch is 2 days old
    assert cfg.lookback_ms("purchase") == 30 * DAY_MS


@pytest.fixture
def client(tmp_path):
    c = connect(f"chdb://{tmp_path / 'ch'}")
    migrate(c)
    yield c


def test_markov_and_shapley_credit_from_clickhouse_counts(client):
    """The hand-computed example of tests/unit/attribution/test_datadriven.py, through the pipeline
    and ClickHouse: A -> buy, A -> B -> buy, B never converts."""
    p = Pipeline(attribution_config=AttributionConfig(lookback_days=1))
    out = run(p, [touch("a1", at(9), "A", "u1"),
                  ev("c1", at(10), "purchase", "web", ids={"cookie": "u1"}, revenue=100.0),
                  touch("a2", at(9), "A", "u2"), touch("b2", at(9, 30), "B", "u2"),
                  ev("c2", at(10), "purchase", "web", ids={"cookie": "u2"}, revenue=50.0),
                  touch("b3", at(9), "B", "u3"),
                  # no touch
                  ev("c4", at(11), "purchase", "web", ids={"cookie": "u4"}, revenue=10.0),
                  touch("z", at(12, days=2), "web", "late")])  # moves the watermark: u3 closes
    assert sorted((x["path_id"][:5], x["converted"]) for x in out.paths) == [
        ("c1", 1), ("c2", 1), ("c4", 1), ("open:", 0)]
    sink = ClickHouseSink(client)
    for table, rows in table_rows(out, at(13, days=2)).items():
        sink.write(table, rows)
    # a replay
    sink.write("attribution_paths", [{**x, "computed_at": at(14, days=2)} for x in out.paths])
    sink.flush()
    markov = {r["channel"]: (round(r["conversions"], 6), round(r["revenue"], 6))
              for r in credit_by(client, "markov")}
    # (channels are lower-cased at ingest) shares a 0.6, b 0.4 of the 2 touched conversions
    # (150 of revenue); c4 goes to direct
    assert markov == {"a": (1.2, 90.0), "b": (0.8, 60.0), "direct": (1.0, 10.0)}
    shapley = {r["channel"]: (round(r["conversions"], 6), round(r["revenue"], 6))
               for r in credit_by(client, "shapley")}
    assert shapley == {"a": (2.0, 150.0), "b": (0.0, 0.0), "direct": (1.0, 10.0)}
    total = sum(r["conversions"] for r in credit_by(client, "markov", order=2))
    assert total == pytest.approx(3.0)
    with pytest.raises(ValueError, match="use --by channel"):
        credit_by(client, "markov", by="publisher")
    paid = with_payouts([{"publisher": "a", "conversions": 1, "revenue": 30.0},
                         {"publisher": "b", "conversions": 1, "revenue": 10.0}],
                        "publisher", 1000.0)
    assert [(r["share"], r["payout"]) for r in paid] == [(0.75, 750.0), (0.25, 250.0)]


def test_views_for_analysts(client):
    p = Pipeline()
    out = run(p, [ev("a", at(9), "click", "display", ids={"cookie": "u"}),
                  ev("c", at(10), "purchase", "web", ids={"cookie": "u"}, revenue=80.0),
                  later(at(10))])
    for row in out.credits:
        row["publisher"] = "pub.example"
    sink = ClickHouseSink(client)
    for table, rows in table_rows(out, at(11)).items():
        sink.write(table, rows)
    sink.flush()
    payouts = client.query("SELECT model, publisher, revenue, revenue_share FROM publisher_payouts "
                           "WHERE model = 'linear'").result_rows
    assert payouts == [("linear", "pub.example", 80.0, 1.0)]
    compared = client.query("SELECT channel, last_touch, linear "
                            "FROM attribution_model_comparison").result_rows
    assert compared == [("display", 1.0, 1.0)]


def test_attribution_settings_come_from_the_environment_with_readable_errors():
    from streams import config

    s = config.load({"PARCOURS_LOOKBACK_DAYS": "20,lead=7", "PARCOURS_HALF_LIFE_DAYS": "3",
                     "PARCOURS_POSITION_ENDS": "0.3", "PARCOURS_MARKOV_ORDERS": "1,3"})
    cfg = config.attribution_config(s)
    assert (cfg.lookback_ms("purchase"), cfg.lookback_ms("lead")) == (20 * DAY_MS, 7 * DAY_MS)
    assert (cfg.half_life_days, cfg.position_ends, cfg.markov_orders) == (3.0, 0.3, (1, 3))
    for env, fragment in (({"PARCOURS_LOOKBACK_DAYS": "a month"}, "not a number of days"),
                          ({"PARCOURS_LOOKBACK_DAYS": "0"}, "positive"),
                          ({"PARCOURS_MARKOV_ORDERS": "1,9"}, "from 1 to 4"),
                          ({"PARCOURS_POSITION_ENDS": "0.6"}, "between 0 and 0.5")):
        with pytest.raises(config.ConfigError, match=fragment):
            config.load(env)
