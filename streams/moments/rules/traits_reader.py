"""A pack's `traits:` settings, its `audiences:`, and the trait tests of a rule's `profile:`, read
with every mistake reported at its line.

    traits:
      lapse_after: 180d            # a customer whose last purchase is this old is lapsed
      top_channel_window: 90d
      rfm:                         # four ascending cut points per axis: scores 1 to 5
        recency: [30d, 90d, 180d, 365d]
        frequency: [2, 3, 5, 10]
        monetary: [100, 500, 1000, 5000]
        source: ClickHouse quintiles of 2026-12-01   # optional: where the cuts come from

    audiences:
      - id: big_spenders
        when: {trait: revenue, gte: 500}
      - id: suv_prospects
        when: {all: [{count: {type: product_view, properties.category: suv}, within: 30d, gte: 3},
                     {trait: lifecycle, in: [known]}]}

A condition is one of `{trait: NAME, OP: value, ...}` (the rule language's operators; for a time
trait, `within: DURATION` or `exists`), `{count: PREDICATE, within: DURATION, OP: number}`,
`{all: [...]}`, `{any: [...]}` or `{not: CONDITION}`. Trait names: the computed ones
(`streams.traits.model.TRAIT_NAMES`), `rfm.r`, `rfm.f`, `rfm.m`, or a declared trait.
"""
from __future__ import annotations

import re

import yaml

from streams.moments.rules import model as R
from streams.moments.rules import syntax
from streams.moments.rules.syntax import parse_duration
from streams.traits import model as T

__all__ = ["TraitsReader"]

_SETTINGS = ("lapse_after", "top_channel_window", "rfm")
_RFM_KEYS = ("recency", "frequency", "monetary", "source")
_AUDIENCE_KEYS = ("id", "description", "when")
_COMBINERS = ("all", "any", "not")
_NUMERIC_OPS = ("eq", "ne", "gt", "gte", "lt", "lte")
DECLARED_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TRAIT_TESTS = (*T.TRAIT_NAMES, "rfm.r", "rfm.f", "rfm.m")


def trait_name(value) -> str:
    if not isinstance(value, str) or not (value in TRAIT_TESTS or DECLARED_NAME.match(value)):
        raise ValueError(f"{value!r} is not a trait (a computed one: {', '.join(TRAIT_TESTS)}; "
                         "or a declared one: lowercase letters, digits and _)")
    return value


def _ascending(check):
    def parse(value):
        if not isinstance(value, list) or len(value) != 4:
            raise ValueError(f"{value!r} is not a list of 4 cut points (scores 1 to 5)")
        cuts = tuple(check(v) for v in value)
        if any(b <= a for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"the cut points {value!r} are not ascending")
        return cuts
    return parse


class TraitsReader:
    """Mixed into the pack's builder (a `NodeReader` with `predicate`)."""

    def traits(self, node: yaml.Node | None) -> T.TraitsConfig:
        entries = self.mapping(node, "traits", _SETTINGS) or {}
        default = T.TraitsConfig()
        rfm = default.rfm
        parts = self.mapping(entries.get("rfm"), "traits.rfm", _RFM_KEYS,
                             required=("recency", "frequency", "monetary"))
        if parts is not None:
            at = "traits.rfm"
            rfm = T.Rfm(
                self.get(parts, "recency", at, _ascending(parse_duration)) or rfm.recency_ms,
                self.get(parts, "frequency", at, _ascending(syntax.number)) or rfm.frequency,
                self.get(parts, "monetary", at, _ascending(syntax.number)) or rfm.monetary,
                self.get(parts, "source", at, syntax.text, "the rule pack"))
        return T.TraitsConfig(
            lapse_after_ms=self.get(entries, "lapse_after", "traits",
                                    syntax.positive(parse_duration), default.lapse_after_ms),
            top_channel_window_ms=self.get(entries, "top_channel_window", "traits",
                                           syntax.positive(parse_duration),
                                           default.top_channel_window_ms),
            rfm=rfm)

    def audiences(self, node: yaml.Node | None) -> tuple[T.Audience, ...]:
        first: dict[str, int] = {}
        built = []
        for i, audience_node in enumerate(self.sequence(node, "audiences", "list of audiences")):
            path = f"audiences[{i}]"
            entries = self.mapping(audience_node, path, _AUDIENCE_KEYS, required=("id", "when"))
            if entries is None:
                continue
            audience_id = self.get(entries, "id", path, syntax.rule_id)
            if audience_id is not None:
                path = f"audiences[{audience_id}]"
            line = audience_node.start_mark.line + 1
            self.once(entries.get("id"), f"{path}.id", audience_id, first, "audience id", line)
            when = self.condition(entries.get("when"), f"{path}.when")
            built.append(T.Audience(audience_id, when,
                                    self.get(entries, "description", path, syntax.text, ""), line))
        return tuple(built)

    def condition(self, node: yaml.Node | None, path: str):
        entries = self.mapping(node, path)
        if entries is None:
            return None
        heads = [k for k in ("trait", "count", *_COMBINERS) if k in entries]
        if len(heads) != 1:
            self.error(node, path, "needs one of trait, count, all, any, not" if not heads else
                       f"has {' and '.join(heads)}: one condition per mapping (combine them "
                       "with all or any)")
            return None
        head = heads[0]
        if head in ("all", "any"):
            self.mapping(node, path, (head,))
            parts = tuple(self.condition(sub, f"{path}.{head}[{i}]")
                          for i, sub in enumerate(self.sequence(entries[head], f"{path}.{head}",
                                                                "list of conditions")))
            return T.All(parts) if head == "all" else T.AnyOf(parts)
        if head == "not":
            self.mapping(node, path, ("not",))
            return T.Not(self.condition(entries["not"], f"{path}.not"))
        if head == "trait":
            return self.trait_test(node, path, entries)
        self.mapping(node, path, ("count", "within", *_NUMERIC_OPS), required=("within",))
        ops = self._ops(node, path, entries, _NUMERIC_OPS, syntax.whole(0))
        return T.CountTest(self.predicate(entries["count"], f"{path}.count"),
                           self.get(entries, "within", path, syntax.positive(parse_duration)),
                           ops)

    def trait_test(self, node: yaml.Node, path: str, entries: dict,
                   others: tuple = ()) -> T.TraitTest | None:
        """`{trait: NAME, OP: value...}` (`others`: keys the mapping may also hold)."""
        name = self.get(entries, "trait", path, trait_name)
        if name in T.TIME_TRAITS:
            self.mapping(node, path, ("trait", "within", "exists", *others))
            if "within" in entries and "exists" in entries:
                self.error(node, path, "within or exists, not both")
            ops = self._ops(node, path, entries, ("exists",), syntax.boolean)
            within = self.get(entries, "within", path, syntax.positive(parse_duration))
            if not ops and within is None:
                self.error(node, path, f"{name} is a time: test it with within: DURATION "
                                       "or exists: true|false")
            return T.TraitTest(name, ops, within) if name is not None else None
        self.mapping(node, path, ("trait", "within", *R.OPS, *others))
        if "within" in entries:
            self.error(entries["within"], f"{path}.within", f"within is for times "
                       f"({', '.join(sorted(T.TIME_TRAITS))})")
        ops = self._ops(node, path, entries, R.OPS, None)
        if not ops:
            self.error(node, path, f"what should {name} be? add an operator "
                                   f"({', '.join(R.OPS)})")
        return T.TraitTest(name, ops) if name is not None else None

    def _ops(self, node, path: str, entries: dict, allowed, check) -> tuple:
        return tuple((op, self.value(entries[op], f"{path}.{op}",
                                     check or syntax.OP_CHECKS[op]))
                     for op in allowed if op in entries)

    def profile_traits(self, entries: dict, node: yaml.Node, path: str,
                       audiences: set[str] | None) -> tuple[tuple[str, ...], T.TraitTest | None]:
        """A rule's `profile: {audience: ID | [IDs], trait: NAME, OP: value}` parts."""
        required: tuple[str, ...] = ()
        if "audience" in entries:
            sub = entries["audience"]
            required = (self.items(sub, f"{path}.audience", syntax.rule_id, "list of audiences")
                        if isinstance(sub, yaml.SequenceNode)
                        else (self.value(sub, f"{path}.audience", syntax.rule_id),))
            for audience in required:
                if audience is not None and audiences is not None and audience not in audiences:
                    self.error(sub, f"{path}.audience", f"no audience '{audience}' in the pack"
                               f"{syntax.suggest(audience, sorted(audiences))}")
        test = None
        if "trait" in entries:
            test = self.trait_test(node, path, entries, others=R.PROFILE_KEYS)
        else:
            for op in R.OPS:
                if op in entries:
                    self.error(entries[op], f"{path}.{op}", "an operator needs trait: NAME")
        return tuple(a for a in required if a is not None), test
