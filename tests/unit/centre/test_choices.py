"""A person's choices: only known fields and values get in; a change becomes preference records
that ingest accepts as the consent and identify touchpoints the gate and the traits read; the
current choices fold as the gate folds them."""
from __future__ import annotations

import orjson
import pytest

from streams.centre.choices import (
    CHANNELS,
    Choices,
    ChoicesRefused,
    current,
    defaults,
    from_form,
    from_json,
    records,
)
from streams.ingest.preferences import ingest_preferences
from streams.preferences.config import GateConfig

GATE = GateConfig(default_opt_in={"email": False, "push": False, "web": True}, max_per_day=3)
BASE = defaults(GATE)
FORM = [("csrf", "x"), ("lang", "fr"), ("channel", "email"), ("channel", "app"),
        ("quiet_start", "22:00"), ("quiet_end", "07:30"), ("max_per_day", "2"),
        ("topic", "electric"), ("topic", "offers")]


def test_the_defaults_are_the_rule_packs():
    assert BASE.channels == {"email": False, "push": False, "sms": False, "display": False,
                             "web": True, "app": False}
    assert (BASE.quiet_hours, BASE.max_per_day, BASE.topics) == ("21:00-08:00", 3, ())


def test_a_form_gives_every_choice():
    chosen = from_form(FORM)
    assert chosen.channels == {ch: ch in ("email", "app") for ch in CHANNELS}
    assert (chosen.quiet_hours, chosen.max_per_day) == ("22:00-07:30", 2)
    assert chosen.topics == ("offers", "electric")  # in the offered order
    none = from_form([("quiet_start", ""), ("quiet_end", ""), ("max_per_day", "0")])
    assert none.channels == dict.fromkeys(CHANNELS, False)
    assert (none.quiet_hours, none.max_per_day, none.topics) == ("", 0, ())


@pytest.mark.parametrize("change, why", [
    ([("colour", "red")], "unknown field"),
    ([("channel", "fax")], "channel"),
    ([("channel", "email")], "channel"),  # twice, with FORM's
    ([("topic", "politics")], "topics"),
    ([("max_per_day", "3")], "given twice"),
    ([("csrf", "y")], "given twice"),
])
def test_a_form_with_anything_unknown_is_refused(change, why):
    with pytest.raises(ChoicesRefused, match=why):
        from_form(FORM + change)


@pytest.mark.parametrize("field, value, why", [
    ("max_per_day", "21", "0 to 20"), ("max_per_day", "-1", "whole number"),
    ("max_per_day", "2.5", "whole number"), ("max_per_day", "٣", "whole number"),
    ("max_per_day", "", "whole number"), ("quiet_start", "25:00", "HH:MM"),
    ("quiet_start", "", "HH:MM"), ("quiet_end", "7:30", "HH:MM"),
    ("quiet_end", "22:00", "the same"), ("max_per_day", "9" * 80, "too long"),
])
def test_a_form_with_a_value_out_of_range_is_refused(field, value, why):
    fields = [(k, value if k == field else v) for k, v in FORM]
    with pytest.raises(ChoicesRefused, match=why):
        from_form(fields)


def test_a_form_missing_a_field_is_refused():
    for name in ("quiet_start", "quiet_end", "max_per_day"):
        with pytest.raises(ChoicesRefused, match="missing"):
            from_form([(k, v) for k, v in FORM if k != name])


def test_an_api_body_changes_only_what_it_names():
    chosen = from_json({"channels": {"push": True}}, BASE)
    assert chosen == Choices({**BASE.channels, "push": True}, BASE.quiet_hours, 3, ())
    chosen = from_json({"quiet_hours": "", "max_per_day": 0, "topics": ["events"]}, chosen)
    assert (chosen.quiet_hours, chosen.max_per_day, chosen.topics) == ("", 0, ("events",))
    for bad in ([], {}, {"channels": {"push": 1}}, {"channels": {"fax": True}},
                {"channels": []}, {"quiet_hours": "22-07"}, {"quiet_hours": 5},
                {"max_per_day": "2"}, {"max_per_day": True}, {"topics": "events"},
                {"topics": ["events", "events"]}, {"extra": 1}):
        with pytest.raises(ChoicesRefused):
            from_json(bad, BASE)


def test_records_go_through_ingest_as_consent_and_identify_touchpoints():
    chosen = from_form(FORM)
    email = "email:" + "ab" * 32
    made = records(email, chosen, 1_800_000_000_000)
    assert len(made) == len(CHANNELS) + 1
    raws = [(orjson.dumps(r), "preferences", 0, i) for i, r in enumerate(made)]
    good, dead = ingest_preferences(raws, max_future_ms=10**15)
    assert dead == []
    consents = {tp["properties"]["channel"]: tp for tp in good if tp["type"] == "consent"}
    assert {ch: tp["properties"]["opt_in"] for ch, tp in consents.items()} == chosen.channels
    for tp in consents.values():
        assert tp["ids"] == {"email": "ab" * 32}  # kept hashed, as ingest keeps a SHA-256
        assert tp["event_time"] == 1_800_000_000_000
        assert tp["properties"]["source"] == "preference_centre"
        assert (tp["properties"]["quiet_hours"], tp["properties"]["max_per_day"]) == \
            ("22:00-07:30", 2)
    (identify,) = [tp for tp in good if tp["type"] == "identify"]
    assert identify["properties"]["traits"] == {"topics": ["offers", "electric"]}
    # and what was saved is what the page shows next
    events = [(tp["event_time"], tp["event_id"], tp["type"], tp["properties"]) for tp in good]
    assert current(events, BASE).as_json() == chosen.as_json()
    # a record re-published is the same event
    again, _ = ingest_preferences(raws, max_future_ms=10**15)
    assert [tp["event_id"] for tp in again] == [tp["event_id"] for tp in good]


def _consent(t, channel, opt_in, eid=None, **more):
    return (t, eid or f"e{t}{channel}", "consent", {"channel": channel, "opt_in": opt_in, **more})


def test_current_choices_fold_as_the_gate_folds_them():
    events = [_consent(5, "push", True), _consent(9, "push", False), _consent(7, "push", True),
              _consent(3, "email", True, quiet_hours="23:00-06:00", max_per_day=1),
              _consent(4, "all", False), _consent(6, "sms", True, max_per_day=99)]
    got = current(events, BASE)
    assert got.channels == {"email": False, "push": False, "sms": True, "display": False,
                            "web": False, "app": False}  # "all" at 4 beats email at 3
    assert (got.quiet_hours, got.max_per_day) == ("23:00-06:00", 20)
    assert got.since["push"] == 9 and got.since["web"] == 4 and "display" in got.since
    # on equal times an opt-out wins, in any order
    tie = [_consent(5, "push", False, "b"), _consent(5, "push", True, "a")]
    assert current(tie, BASE).channels["push"] is False
    assert current(list(reversed(tie)), BASE).channels["push"] is False
    assert current([], BASE) == BASE
    # "" clears the quiet hours; a malformed window is ignored
    cleared = current([_consent(1, "email", True, quiet_hours=""),
                       _consent(2, "email", True, quiet_hours="nonsense")], BASE)
    assert cleared.quiet_hours == ""
