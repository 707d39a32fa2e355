"""Audiences compiled to plain closures: who is in, which events they count, when that can change.

An audience's `when` is a tree of `TraitTest`, `CountTest`, `All`, `AnyOf` and `Not`
(streams.traits.model). `AudienceBook` compiles a pack's audiences once:

- `observe(st, tp)` records, in the profile's state, each event a count test matches (under the
  test's key "audience#n": the n-th count of that audience's tree);
- `members(values, st, as_of)` lists the audiences whose predicate holds for the traits `values`
  (`streams.traits.profile.derive`) and the counted events, as of `as_of`;
- `deadlines(values, as_of)`: the times after `as_of` at which a `within` test on a time trait
  turns false with no event (the counted windows are `windows`, handled with the state).

A trait test on a list (a declared trait such as topics of interest) holds when an item passes
for eq, in, prefix and contains, when every item passes for ne and not_in, and for exists when
the list is not empty.
"""
from __future__ import annotations

from typing import Any, Callable

from streams.moments.rules.predicates import Matcher, compile_predicate, value_test
from streams.traits.model import TRAIT_NAMES, All, AnyOf, Audience, CountTest, Not, TraitTest
from streams.traits.profile import (
    DECLARED,
    FIRST_SEEN,
    LAST_SEEN,
    PURCHASE,
    TOUCH,
    add_counted,
)

__all__ = ["COUNTED", "KNOWN", "AudienceBook", "inputs_of", "trait_check"]

KNOWN, COUNTED = "known", "counted"  # the profile became identified; an audience counted an event
_INPUTS = {"first_seen": FIRST_SEEN, "last_seen": LAST_SEEN, "purchases": PURCHASE,
           "revenue": PURCHASE, "last_purchase_at": PURCHASE, "rfm": PURCHASE,
           "top_channel": TOUCH}


def inputs_of(trait: str) -> set[str]:
    """What an event must change for `trait` to change (time aside: see `deadlines`)."""
    if trait == "lifecycle":
        return {PURCHASE, KNOWN}
    name = trait.partition(".")[0]
    return {_INPUTS[name]} if name in TRAIT_NAMES else {DECLARED}

Test = Callable[[dict, dict, int], bool]
_ANY_ITEM = frozenset({"eq", "in", "prefix", "contains"})


def _on_value(op: str, value: Any) -> Callable[[Any], bool]:
    test = value_test(op, value)
    if op == "exists":
        return lambda v: (bool(v) if isinstance(v, list) else test(v))
    if op in _ANY_ITEM:
        return lambda v: any(map(test, v)) if isinstance(v, list) else test(v)
    if op in ("ne", "not_in"):
        return lambda v: all(map(test, v)) if isinstance(v, list) else test(v)
    return lambda v: not isinstance(v, list) and test(v)


def trait_check(test: TraitTest) -> Test:
    """`test` as a closure over (traits by name, the profile's state, as of)."""
    name = test.trait
    if test.within_ms is not None:
        within = test.within_ms
        return lambda values, st, as_of: (values.get(name) is not None
                                          and as_of - values[name] < within)
    tests = [_on_value(op, value) for op, value in test.ops]
    return lambda values, st, as_of: all(t(values.get(name)) for t in tests)


class AudienceBook:
    def __init__(self, audiences: tuple[Audience, ...] = (), refs=None):
        self.counters: list[tuple[str, Matcher, int]] = []  # (key, matcher, within)
        self.windows: dict[str, int] = {}
        self._timed: list[tuple[str, int]] = []  # (time trait, within) of the `within` tests
        self.tests: list[tuple[str, Test]] = []
        self.inputs: set[str] = set()  # what an event must change to change a membership
        self.reads: set[str] = set()  # the traits the tests read ("declared": a declared one)
        for audience in audiences:
            self._n = 0
            self.tests.append((audience.id, self._compile(audience.id, audience.when, refs)))
        self.ids = tuple(a.id for a in audiences)

    def _compile(self, audience: str, node, refs) -> Test:
        if isinstance(node, TraitTest):
            self.inputs |= inputs_of(node.trait)
            name = node.trait.partition(".")[0]
            self.reads.add(name if name in TRAIT_NAMES else "declared")
            if node.within_ms is not None:
                self._timed.append((node.trait, node.within_ms))
            return trait_check(node)
        if isinstance(node, CountTest):
            self.inputs.add(COUNTED)
            key = f"{audience}#{self._n}"
            self._n += 1
            self.counters.append((key, compile_predicate(node.match, refs), node.within_ms))
            self.windows[key] = within = node.within_ms
            tests = [value_test(op, value) for op, value in node.ops]

            def count(values: dict, st: dict, as_of: int) -> bool:
                since = as_of - within
                n = sum(1 for t, _eid in (st.get("cn") or {}).get(key, ()) if since < t <= as_of)
                return all(test(n) for test in tests)
            return count
        if isinstance(node, (All, AnyOf)):
            parts = [self._compile(audience, part, refs) for part in node.parts]
            combine = all if isinstance(node, All) else any
            return lambda values, st, as_of: combine(p(values, st, as_of) for p in parts)
        if isinstance(node, Not):
            part = self._compile(audience, node.part, refs)
            return lambda values, st, as_of: not part(values, st, as_of)
        raise TypeError(f"audience {audience}: unknown condition {node!r}")

    def observe(self, st: dict, tp: dict) -> bool:
        """Record the event in each count it matches; True when one did."""
        hit = False
        for key, matcher, _within in self.counters:
            types = matcher.types
            if (types is None or tp["type"] in types) and matcher(tp) is not None:
                add_counted(st, key, tp["event_time"], tp["event_id"])
                hit = True
        return hit

    def members(self, values: dict, st: dict, as_of: int) -> list[str]:
        return [audience for audience, test in self.tests if test(values, st, as_of)]

    def deadlines(self, values: dict, as_of: int) -> list[int]:
        times = []
        for name, within in self._timed:
            value = values.get(name)
            if isinstance(value, int) and value + within > as_of:
                times.append(value + within)
        return times
