"""Preference gate configuration: GateConfig.from_dict, its defaults and errors, parse_duration."""
from __future__ import annotations

import pytest
import yaml

from streams.moments.rules.loader import DEFAULT_PACK
from streams.preferences.gate import DAY_MS, GateConfig, Weights, parse_duration
from tests.unit.preferences.cases import H


# -- configuration -------------------------------------------------------------------------------
def test_from_dict_reads_the_default_pack():
    prefs = yaml.safe_load(DEFAULT_PACK.read_text())["preferences"]
    cfg = GateConfig.from_dict(prefs)
    assert cfg.default_tz == "Europe/Paris" and cfg.quiet_hours == ("21:00", "08:00")
    assert cfg.max_per_day == 3 and cfg.max_per_day_channel == {"push": 1, "sms": 1, "email": 2}
    assert cfg.rolling == ((7 * DAY_MS, 8),) and cfg.holdout == 0.05
    assert cfg.default_opt_in["display"] is True and cfg.default_opt_in["push"] is False
    assert cfg.channel_cost["sms"] == 0.05 and cfg.weights == Weights(1.0, 0.5, 10.0)
    assert cfg.engagement_window == 30 * DAY_MS


def test_from_dict_defaults_and_variants():
    assert GateConfig.from_dict({}) == GateConfig() == GateConfig.from_dict(None)
    assert GateConfig().quiet_hours == ("21:00", "08:00") and GateConfig().max_per_day == 3
    cfg = GateConfig.from_dict({"holdout": "5%", "quiet_hours": None, "engagement_window": 1000,
                                "weights": {"cost": 2}})
    assert cfg.holdout == 0.05 and cfg.quiet_hours is None and cfg.engagement_window == 1000
    assert cfg.weights == Weights(1.0, 0.5, 2.0)
    assert GateConfig.from_dict({"quiet_hours": "9:05-7:00"}).quiet_hours == ("09:05", "07:00")


@pytest.mark.parametrize("prefs, message", [
    ({"quiet_hours": "25:00-08:00"}, "quiet_hours: '25:00-08:00' is not HH:MM-HH:MM"),
    ({"quiet_hours": "evening"}, "quiet_hours: 'evening' is not HH:MM-HH:MM"),
    ({"default_tz": "Europe/Pariss"}, "default_tz: unknown time zone 'Europe/Pariss'"),
    ({"unknwn": 1}, "unknwn: unknown key (known: default_tz, quiet_hours,"),
    ({"max_per_day": -1}, "max_per_day: expected an integer >= 0, got -1"),
    ({"max_per_day": "3"}, "max_per_day: expected an integer >= 0, got '3'"),
    ({"max_per_day_channel": {"push": 1.5}}, "max_per_day_channel: push: expected an integer"),
    ({"rolling": [{"window": "7x", "max": 8}]}, "rolling: [0]: bad duration '7x'"),
    ({"rolling": [{"window": "7d"}]}, "rolling: [0]: expected {window: duration, max: int}"),
    ({"rolling": {"window": "7d"}}, "rolling: expected a list"),
    ({"default_opt_in": {"push": "yes"}}, "default_opt_in: push: expected true or false"),
    ({"holdout": 1.5}, "holdout: must be within 0..1"),
    ({"holdout": "five"}, "holdout: expected a share 0..1 or a percentage"),
    ({"channel_cost": {"sms": "cheap"}}, "channel_cost: sms: expected a number"),
    ({"weights": {"price": 1}}, "weights: price: unknown key "
                                "(known: preference, engagement, cost)"),
    ({"engagement_window": "0s"}, "engagement_window: duration must be > 0"),
    ("nope", "preferences: expected a mapping"),
])
def test_from_dict_errors_are_readable(prefs, message):
    with pytest.raises(ValueError) as err:
        GateConfig.from_dict(prefs)
    assert str(err.value).startswith(message)


def test_parse_duration():
    assert [parse_duration(x) for x in ("500ms", "30s", "5m", "1h", "1d", "2w", "1.5h", 250)] == [
        500, 30_000, 300_000, H, DAY_MS, 14 * DAY_MS, 5_400_000, 250]
    for bad in ("", "5 minutes", "-1s", True, -5, None, 1.5):
        with pytest.raises(ValueError, match="bad duration"):
            parse_duration(bad)
