"""Helpers of the rule-language tests: a pack from indented YAML text, its errors, one rule."""
from __future__ import annotations

import textwrap

import pytest

from streams.moments.rules import model as R
from streams.moments.rules.loader import DEFAULT_PACK, RulePackError, load_pack_text

PACK_DIR = DEFAULT_PACK.parent
MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000

# Three header lines, so the first rule starts at line 4.
HEAD = "version: 1\nreference: {stores: stores.csv, inventory: inventory.csv}\nrules:\n"


def _text(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def load(text: str) -> R.RulePack:
    return load_pack_text(_text(text), source="t.yaml", base_dir=PACK_DIR)


def errors(text: str) -> list[str]:
    with pytest.raises(RulePackError) as err:
        load(text)
    assert str(err.value) == "\n".join(str(e) for e in err.value.errors)
    return [str(e) for e in err.value.errors]


def rule(body: str) -> R.Rule:
    """Load one rule given as the YAML lines of the list item (starting with `- id:`)."""
    return load(HEAD + _text(body)).rules[0]


def predicate(yaml_predicate: str) -> R.Predicate:
    return rule(f"- id: r\n  when: {{event: {yaml_predicate}}}\n  action: {{channels: [web]}}\n"
                ).pattern.match
