"""The `preferences:` section of a rule pack: checked by the preferences gate's own configuration
when it is importable, each error pointing at its key; passed through unchecked when it is not."""
from __future__ import annotations

import sys
import types

import pytest

from tests.unit.moments.rules_text import errors, load


class _FakeGateConfig:
    @classmethod
    def from_dict(cls, d):
        if d.get("max_per_day") == "lots":
            raise ValueError("max_per_day: expected an integer >= 0, got 'lots'")
        if "bad" in d:
            raise ValueError("something is wrong")
        return cls()


PREFS_PACK = """
    version: 1
    preferences:
      default_tz: Europe/Paris
      max_per_day: lots
    rules:
      - {id: a, when: {event: {type: a}}, action: {channels: [web]}}
    """


def test_preferences_errors_point_at_the_key(monkeypatch):
    monkeypatch.setitem(sys.modules, "streams.preferences.config",
                        types.SimpleNamespace(GateConfig=_FakeGateConfig))
    assert errors(PREFS_PACK) == ["t.yaml:4: preferences: max_per_day: "
                                  "expected an integer >= 0, got 'lots'"]
    assert errors(PREFS_PACK.replace("max_per_day: lots", "bad: 1")) == [
        "t.yaml:2: preferences: something is wrong"]
    assert errors("version: 1\npreferences: [a]\nrules:\n"
                  "  - {id: a, when: {event: {type: a}}, action: {channels: [web]}}\n") == [
        "t.yaml:2: preferences: expected a mapping, not a list"]
    pack = load(PREFS_PACK.replace("lots", "4"))
    assert pack.preferences == {"default_tz": "Europe/Paris", "max_per_day": 4}


def test_preferences_pass_unchecked_without_a_gate(monkeypatch):
    monkeypatch.setitem(sys.modules, "streams.preferences.config", None)  # the import fails
    assert load(PREFS_PACK).preferences == {"default_tz": "Europe/Paris", "max_per_day": "lots"}


def test_preferences_checked_by_the_real_gate():
    pytest.importorskip("streams.preferences.config")
    found = errors(PREFS_PACK)
    assert len(found) == 1 and found[0].startswith("t.yaml:4: preferences: max_per_day")
