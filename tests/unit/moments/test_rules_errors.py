"""The YAML rule language: every kind of mistake, reported with its line, and
`parcours rules check`."""
from __future__ import annotations

import io

import pytest

from streams.moments.rules.loader import RuleError, RulePackError, check_main, load_pack_text
from tests.unit.moments.rules_text import HEAD, _text, errors


def test_unknown_keys_suggest_the_close_one():
    assert errors("""
        version: 1
        rule: []
        rules:
          - id: a
            when: {event: {tpye: a, channel: web}}
            cooldwon: 1d
            action: {chanels: [web]}
          - id: b
            when: {event: {type: a, properties: {price: {gtee: 3}}}}
            action: {channels: [web], zzz: 1}
        """) == [
        "t.yaml:2: unknown key 'rule' (did you mean 'rules'?)",
        "t.yaml:5: rules[a].when.event: unknown key 'tpye' (did you mean 'type'?)",
        "t.yaml:6: rules[a]: unknown key 'cooldwon' (did you mean 'cooldown'?)",
        "t.yaml:7: rules[a].action: unknown key 'chanels' (did you mean 'channels'?)",
        "t.yaml:7: rules[a].action: needs channels (one message) or story with messages",
        "t.yaml:9: rules[b].when.event.properties.price: unknown operator 'gtee' "
        "(did you mean 'gte'?)",
        "t.yaml:10: rules[b].action: unknown key 'zzz' "
        "(expected one of: channels, story, messages, code, payload)",
    ]


def test_bad_values_are_reported_at_their_line():
    assert errors("""
        version: 1
        settings: {lateness: 5x}
        rules:
          - id: near_store_offer
            when:
              absence:
                after: {type: a}
                missing: {type: b}
                within: 30x
            cooldown: soon
            holdout: 150%
            profile: {identified: maybe, min_interest: -1, interest_window: 0}
            action: {channels: [push, Email, "sms"]}
        """) == [
        "t.yaml:2: settings.lateness: '5x' is not a duration (use 500ms, 30s, 5m, 1h, 1d, 2w)",
        "t.yaml:9: rules[near_store_offer].when.absence.within: '30x' is not a duration "
        "(use 500ms, 30s, 5m, 1h, 1d, 2w)",
        "t.yaml:10: rules[near_store_offer].cooldown: 'soon' is not a duration "
        "(use 500ms, 30s, 5m, 1h, 1d, 2w)",
        "t.yaml:11: rules[near_store_offer].holdout: '150%' is not a share between 0 and 1 "
        "(e.g. 0.1 or \"10%\")",
        "t.yaml:12: rules[near_store_offer].profile.identified: 'maybe' is not true or false",
        "t.yaml:12: rules[near_store_offer].profile.min_interest: -1 is not a whole number >= 0",
        "t.yaml:12: rules[near_store_offer].profile.interest_window: 0 must be more than 0",
        "t.yaml:13: rules[near_store_offer].action.channels[1]: 'Email' is not a channel name "
        "(lowercase letters, digits, _ and -)",
    ]


def test_rule_ids_must_be_valid_and_unique():
    assert errors(HEAD + _text("""
        - id: Near Store
          when: {event: {type: a}}
          action: {channels: [web]}
        - id: twice
          when: {event: {type: a}}
          action: {channels: [web]}
        - id: twice
          when: {event: {type: b}}
          action: {channels: [web]}
        - when: {event: {type: b}}
        """)) == [
        "t.yaml:4: rules[0].id: 'Near Store' is not a valid id "
        "(lowercase letters, digits, _ and -, starting with a letter or a digit)",
        "t.yaml:10: rules[twice].id: rule id 'twice' appears twice (first at line 7)",
        "t.yaml:13: rules[3]: missing 'id' and 'action'",
    ]


def test_pattern_mistakes():
    assert errors(HEAD + _text("""
        - id: none
          when: {}
          action: {channels: [web]}
        - id: two
          when: {event: {type: a}, count: {match: {type: a}, at_least: 1, within: 1h}}
          action: {channels: [web]}
        - id: seq
          when:
            sequence:
              steps: [{type: a}]
              within: 0
              same: [propreties.product_id, properties, type.x]
          action: {channels: [web]}
        - id: abs
          when: {absence: {after: {type: a}, missing: {}}}
          action: {channels: [web]}
        """)) == [
        "t.yaml:5: rules[none].when: needs one of event, sequence, absence, count",
        "t.yaml:8: rules[two].when: has event and count: a rule has exactly one pattern",
        "t.yaml:8: rules[two].when.count.at_least: 1 is not a whole number >= 2",
        "t.yaml:13: rules[seq].when.sequence.steps: expected a list of at least 2 steps "
        "(for a single event use `event:`)",
        "t.yaml:14: rules[seq].when.sequence.within: 0 must be more than 0",
        "t.yaml:15: rules[seq].when.sequence.same[0]: 'propreties.product_id' does not start "
        "with a field of the event (did you mean 'properties'?)",
        "t.yaml:15: rules[seq].when.sequence.same[1]: 'properties': name a field inside properties "
        "(e.g. properties.NAME)",
        "t.yaml:15: rules[seq].when.sequence.same[2]: 'type.x': type has no fields",
        "t.yaml:18: rules[abs].when.absence: missing 'within'",
        "t.yaml:18: rules[abs].when.absence.missing: an empty predicate matches every event; "
        "name at least a type",
    ]


def test_predicate_and_operator_mistakes():
    assert errors(HEAD + _text("""
        - id: p
          when:
            event:
              type: []
              channel: {}
              campaign: {in: winter}
              publisher: ~
              properties:
                price: {gt: cheap, exists: yes please}
                tags: [{nested: 1}]
                name: {prefix: 3}
              context: [a]
          action: {channels: [web]}
        """)) == [
        "t.yaml:7: rules[p].when.event.type: an empty list matches nothing",
        "t.yaml:8: rules[p].when.event.channel: empty operator mapping (use one of eq, ne, in, "
        "not_in, gt, gte, lt, lte, exists, prefix, contains)",
        "t.yaml:9: rules[p].when.event.campaign.in: 'winter' is not a list",
        "t.yaml:10: rules[p].when.event.publisher: needs a value "
        "(to test for a missing field use {exists: false})",
        "t.yaml:12: rules[p].when.event.properties.price.gt: 'cheap' is not a number",
        "t.yaml:12: rules[p].when.event.properties.price.exists: 'yes please' is not true or false",
        "t.yaml:13: rules[p].when.event.properties.tags: a mapping is not a value to compare "
        "(use a text, a number or true/false)",
        "t.yaml:14: rules[p].when.event.properties.name.prefix: 3 is not a text",
        "t.yaml:15: rules[p].when.event.context: expected a mapping, not a list",
    ]


def test_action_mistakes():
    assert errors(HEAD + _text("""
        - id: both
          when: {event: {type: a}}
          action: {channels: [web], story: s, messages: [{id: m, channels: [web]}]}
        - id: story-only
          when: {event: {type: a}}
          action: {story: s}
        - id: messages-only
          when: {event: {type: a}}
          action:
            messages:
              - {id: m, channels: [web], payload: {x: "{code}"}}
              - {id: m, channels: []}
              - {channels: [push]}
        - id: payload
          when: {event: {type: a}}
          action:
            channels: [web]
            payload: {a: "{prodct_id}", b: "{code}", c: [1], d: "{ brace } {", e: ~, f: "{nope}"}
        """)) == [
        "t.yaml:6: rules[both].action: has both channels and a story: use channels for one "
        "message, or story with messages",
        "t.yaml:9: rules[story-only].action: a story needs messages",
        # a block mapping is reported at its key (`action:`), not at its first entry (`messages:`)
        "t.yaml:12: rules[messages-only].action: messages need a story name (add story: NAME)",
        "t.yaml:14: rules[messages-only].action.messages[0].payload.x: '{code}' uses {code} but "
        "the action has no code",
        "t.yaml:15: rules[messages-only].action.messages[1].id: message id 'm' appears twice "
        "(first at line 14)",
        "t.yaml:15: rules[messages-only].action.messages[1].channels: expected a non-empty list "
        "of channels, not an empty list",
        "t.yaml:16: rules[messages-only].action.messages[2]: missing 'id'",
        "t.yaml:21: rules[payload].action.payload.a: unknown placeholder {prodct_id} in "
        "'{prodct_id}' (did you mean {product_id}?)",
        "t.yaml:21: rules[payload].action.payload.b: '{code}' uses {code} "
        "but the action has no code",
        "t.yaml:21: rules[payload].action.payload.c: a list is not a payload value "
        "(use a text or a number)",
        "t.yaml:21: rules[payload].action.payload.e: an empty value is not a payload value "
        "(use a text or a number)",
        "t.yaml:21: rules[payload].action.payload.f: unknown placeholder {nope} in '{nope}' "
        "(use {product_id}, {store_id}, {code}, {rule}, {event_id}, {profile_id} or {trait.NAME})",
    ]


def test_reference_data_is_checked(tmp_path):
    (tmp_path / "stores.csv").write_text("store_id,name,lat,lon,tz\nparis-15,P,48.8,2.3,\n"
                                         "x,X,abc,2,\n")
    (tmp_path / "stores_ok.csv").write_text("store_id,name,lat,lon,tz\nparis-15,P,48.8,2.3,\n")
    text = _text("""
        version: 1
        reference:
          stores: stores.csv
          inventory: missing.csv
        rules:
          - {id: a, when: {event: {type: a}}, action: {channels: [web]}}
        """)
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, source="t.yaml", base_dir=tmp_path)
    assert [str(e) for e in err.value.errors] == [
        f"t.yaml:3: reference.stores: {tmp_path / 'stores.csv'}:3: lat 'abc' is not a number",
        f"t.yaml:4: reference.inventory: {tmp_path / 'missing.csv'}: no such file",
    ]
    text = _text("""
        version: 1
        reference: {stores: stores_ok.csv}
        rules:
          - id: a
            when: {event: {type: a, geofence: {within: 1km, stores: [paris-15, paris-51]}}}
            action: {channels: [web]}
        """)
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, source="t.yaml", base_dir=tmp_path)
    assert [str(e) for e in err.value.errors] == [
        "t.yaml:5: rules[a].when.event.geofence.stores[1]: unknown store 'paris-51' "
        "(did you mean 'paris-15'?)"]


def test_geofence_and_stock_need_their_reference_files():
    assert errors("""
        version: 1
        rules:
          - id: a
            when: {event: {type: a, geofence: {within: 1km}}}
            action: {channels: [web]}
          - id: b
            when: {event: {type: a, in_stock: {store: nearest, within: 30, min_quantity: 0}}}
            action: {channels: [web]}
          - id: c
            when: {event: {type: a, in_stock: {store: shop, product: price}}}
            action: {channels: [web]}
        """) == [
        "t.yaml:4: rules[a].when.event.geofence: a geofence needs the store list: "
        "add reference.stores",
        "t.yaml:7: rules[b].when.event.in_stock: store: nearest needs the store list: "
        "add reference.stores",
        "t.yaml:7: rules[b].when.event.in_stock: a stock join needs the inventory: "
        "add reference.inventory",
        "t.yaml:7: rules[b].when.event.in_stock.within: 30 is not a distance (use 500m, 2km)",
        "t.yaml:7: rules[b].when.event.in_stock.min_quantity: 0 is not a whole number >= 1",
        "t.yaml:10: rules[c].when.event.in_stock.store: 'shop' is not one of nearest, event",
        "t.yaml:10: rules[c].when.event.in_stock: a stock join needs the inventory: "
        "add reference.inventory",
        "t.yaml:10: rules[c].when.event.in_stock.product: 'price' does not start with a field of "
        "the event (expected one of: type, channel, campaign, publisher, event_id, event_time, "
        "profile_id, ids, context, properties)",
    ]


def test_yaml_syntax_error_gives_the_line_of_the_problem():
    text = _text("""
        version: 1
        rules:
          - id: a
            when: {event: {type: a}
            action: {channels: [web]}
        """)
    with pytest.raises(RulePackError) as err:
        load_pack_text(text, source="t.yaml")
    assert len(err.value.errors) == 1
    e = err.value.errors[0]
    assert (e.file, e.line, e.path) == ("t.yaml", 5, "")
    assert str(e).startswith("t.yaml:5: YAML syntax error: ")
    assert "line 4" in e.message  # where the unclosed flow mapping began
    with pytest.raises(RulePackError, match=r"^t\.yaml:2: YAML syntax error: "
                                            r"mapping values are not allowed here"):
        load_pack_text("version: 1\nrules: a: b\n", source="t.yaml")
    with pytest.raises(RulePackError, match=r"^t\.yaml:2: YAML syntax error: expected a single "
                                            r"document in the stream but found another document$"):
        load_pack_text("version: 1\n---\nversion: 1\n", source="t.yaml")


def test_empty_file_and_wrong_root():
    assert errors("") == ["t.yaml:1: the file is empty: "
                          "a rule pack is a mapping with version: 1 and rules"]
    assert errors("# only a comment\n") == errors("")
    assert errors("- a\n- b\n") == ["t.yaml:1: expected a mapping, not a list"]
    assert errors("just text\n") == ["t.yaml:1: expected a mapping, not 'just text'"]


def test_version_rules_and_duplicate_keys():
    assert errors("""
        version: 2
        rules: []
        """) == ["t.yaml:1: version: 2 is not a known version (write version: 1)",
                 "t.yaml:2: rules: expected a non-empty list of rules, not an empty list"]
    assert errors("version: true\nrules: {a: 1}\n") == [
        "t.yaml:1: version: true is not a known version (write version: 1)",
        "t.yaml:2: rules: expected a non-empty list of rules, not a mapping"]
    assert errors("""
        settings: {lateness: -1}
        rules:
          - id: a
            id: b
            when: {event: {type: a}}
            action: {channels: [web]}
        """) == ["t.yaml:1: missing 'version'",
                 "t.yaml:1: settings.lateness: -1 is not a duration "
                 "(use 500ms, 30s, 5m, 1h, 1d, 2w)",
                 "t.yaml:4: rules[a]: key 'id' appears twice (first at line 3)"]


def test_every_error_of_a_pack_is_reported_in_line_order():
    found = errors(HEAD + _text("""
        - id: a
          when: {event: {type: a}}
          cooldown: x
          action: {channels: [web]}
        - id: b
          when: {event: {type: a}}
          cooldown: y
          action: {channels: [web]}
        - id: c
          when: {event: {type: a}}
          cooldown: z
          action: {channels: [web]}
        """))
    assert [e.split(": ")[0:2] for e in found] == [["t.yaml:6", "rules[a].cooldown"],
                                                   ["t.yaml:10", "rules[b].cooldown"],
                                                   ["t.yaml:14", "rules[c].cooldown"]]


def test_check_main_reports_errors_and_unreadable_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nrules:\n  - id: a\n    when: {event: {type: a}}\n    cooldown: 5x\n"
                   "    action: {channels: [Web]}\n")
    out = io.StringIO()
    assert check_main(str(bad), out=out) == 1
    assert out.getvalue().splitlines() == [
        f"{bad}:5: rules[a].cooldown: '5x' is not a duration (use 500ms, 30s, 5m, 1h, 1d, 2w)",
        f"{bad}:6: rules[a].action.channels[0]: 'Web' is not a channel name "
        "(lowercase letters, digits, _ and -)",
        f"{bad}: 2 errors"]
    bad.write_text("version: 1\n")
    out = io.StringIO()
    assert check_main(str(bad), out=out) == 1
    assert out.getvalue() == f"{bad}:1: missing 'rules'\n{bad}: 1 error\n"
    out = io.StringIO()
    assert check_main(str(tmp_path / "none.yaml"), out=out) == 2
    assert out.getvalue() == (f"parcours: error: cannot read {tmp_path / 'none.yaml'}: "
                              "No such file or directory\n")
    out = io.StringIO()
    assert check_main(str(tmp_path), out=out) == 2
    assert out.getvalue().startswith(f"parcours: error: cannot read {tmp_path}: ")


def test_check_main_one_rule_and_stdout_default(tmp_path, capsys):
    ok = tmp_path / "ok.yaml"
    ok.write_text("version: 1\nrules:\n"
                  "  - {id: only, when: {event: {type: a}}, action: {channels: [web]}}\n")
    assert check_main(str(ok)) == 0
    assert capsys.readouterr().out == f"{ok}: 1 rule OK: only\n"


def test_rule_error_format():
    assert str(RuleError("f.yaml", 3, "rules[a].cooldown", "bad")) == (
        "f.yaml:3: rules[a].cooldown: bad")
    assert str(RuleError("f.yaml", 3, "", "bad")) == "f.yaml:3: bad"
    assert str(RuleError("f.yaml", 0, "", "bad")) == "f.yaml: bad"
    err = RulePackError([RuleError("f", 1, "", "a"), RuleError("f", 2, "x", "b")])
    assert isinstance(err, ValueError) and str(err) == "f:1: a\nf:2: x: b"
