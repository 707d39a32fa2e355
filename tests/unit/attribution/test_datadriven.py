"""Markov and Shapley credit on small graphs computed by hand."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.attribution.datadriven import (
    conversion_probability,
    markov_shares,
    path_states,
    path_transitions,
    shapley_credit,
)


def transitions_of(paths, order=1):
    total: dict = {}
    for channels, converted in paths:
        for key, n in path_transitions(channels, converted, order).items():
            total[key] = total.get(key, 0) + n
    return total


# A -> conv, A -> B -> conv, B -> null (worked by hand in the comments)
PATHS = [(["A"], True), (["A", "B"], True), (["B"], False)]


def test_markov_removal_effects_by_hand():
    t = transitions_of(PATHS)
    assert t == {("start", "A"): 2, ("start", "B"): 1, ("A", "conversion"): 1, ("A", "B"): 1,
                 ("B", "conversion"): 1, ("B", "null"): 1}
    # x_B = 1/2, x_A = 1/2 + 1/2 x_B = 3/4, x_start = 2/3 x_A + 1/3 x_B = 2/3
    assert conversion_probability(t) == pytest.approx(2 / 3)
    # without A: x_start = 1/3 x_B = 1/6 -> removal effect 3/4; without B: x_start = 1/3 -> 1/2
    assert conversion_probability(t, "A") == pytest.approx(1 / 6)
    assert conversion_probability(t, "B") == pytest.approx(1 / 3)
    assert markov_shares(t) == pytest.approx({"A": 0.6, "B": 0.4})


def test_markov_with_a_loop_is_solved_exactly():
    # A -> A -> conv and A -> null: P(A -> A) = 1/3, P(A -> conv) = 1/3, P(A -> null) = 1/3
    t = transitions_of([(["A", "A"], True), (["A"], False)])
    # x_A = 1/3 + 1/3 x_A -> x_A = 1/2
    assert conversion_probability(t) == pytest.approx(0.5)
    assert markov_shares(t) == {"A": 1.0}


def test_second_order_states():
    assert path_states(["A", "B", "C"], 2) == ["A", "A>B", "B>C"]
    t = transitions_of([(["A", "B"], True), (["B"], False)], order=2)
    assert t == {("start", "A"): 1, ("A", "A>B"): 1, ("A>B", "conversion"): 1,
                 ("start", "B"): 1, ("B", "null"): 1}
    # removing B also removes the state A>B: no path converts without B; removing A: 0 as well
    assert markov_shares(t) == pytest.approx({"A": 0.5, "B": 0.5})


def test_markov_without_conversions_gives_nothing():
    assert markov_shares(transitions_of([(["A"], False)])) == {}


def test_shapley_by_hand():
    # {A}: 1 of 1 converts, {A,B}: 1 of 1, {B}: 0 of 1. In the game on {A,B}: v(A)=1, v(B)=0,
    # v(AB)=1 -> phi_A = 1/2 (1 - 0) + 1/2 (1 - 0) = 1, phi_B = 1/2 (0) + 1/2 (1 - 1) = 0
    credit = shapley_credit([(("A",), 1, 1, 100.0), (("A", "B"), 1, 1, 50.0), (("B",), 1, 0, 0.0)])
    assert credit == {"A": pytest.approx((2.0, 150.0)), "B": (0.0, 0.0)}


def test_shapley_splits_a_synergy_equally():
    # only the pair converts: v(A)=v(B)=0, v(AB)=1/2 -> 1/4 each -> half the conversion each
    credit = shapley_credit([(("A", "B"), 2, 1, 10.0), (("A",), 1, 0, 0.0), (("B",), 1, 0, 0.0)])
    assert credit == {"A": pytest.approx((0.5, 5.0)), "B": pytest.approx((0.5, 5.0))}


def test_shapley_refuses_more_channels_than_it_can_enumerate():
    with pytest.raises(ValueError, match="limited to 15"):
        shapley_credit([(tuple(f"c{i}" for i in range(16)), 1, 1, 1.0)])


paths = st.lists(st.tuples(st.lists(st.sampled_from("ABCDE"), min_size=1, max_size=6),
                           st.booleans()),
                 min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(paths, st.integers(1, 3))
def test_markov_shares_sum_to_one_when_anything_converts(sample, order):
    shares = markov_shares(transitions_of(sample, order))
    if any(converted for _, converted in sample):
        assert sum(shares.values()) == pytest.approx(1.0)
        assert all(v >= 0 for v in shares.values())
    else:
        assert shares == {}


@settings(max_examples=60, deadline=None)
@given(paths)
def test_shapley_credits_every_conversion_once(sample):
    sets: dict = {}
    for channels, converted in sample:
        key = tuple(sorted(set(channels)))
        acc = sets.setdefault(key, [0, 0, 0.0])
        acc[0] += 1
        acc[1] += converted
        acc[2] += 10.0 * converted
    credit = shapley_credit([(k, *v) for k, v in sets.items()])
    conversions = sum(converted for _, converted in sample)
    assert sum(c for c, _ in credit.values()) == pytest.approx(conversions)
    assert sum(r for _, r in credit.values()) == pytest.approx(10.0 * conversions)
