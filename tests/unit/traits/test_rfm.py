"""RFM cut points from plain numbers: the quantiles (numpy's linear definition), the ties nudged
into strictly ascending cuts, the direction of each score, and the YAML a pack accepts."""
from __future__ import annotations

import random

import numpy as np
import pytest

from streams.moments.rules.loader import DEFAULT_PACK, load_pack_text
from streams.traits.model import DAY_MS, Rfm
from streams.traits.profile import rfm_of
from streams.traits.rfm import (
    frequency_cuts,
    from_values,
    monetary_cuts,
    quantiles,
    recency_cuts,
    strictly_ascending,
    suggestion,
)

AS_OF = 1_795_000_000_000  # 2026-11-18


def test_quantiles_interpolate_between_sorted_values_as_numpy_does():
    assert quantiles(range(11)) == (2, 4, 6, 8)
    assert quantiles([7.0]) == (7.0, 7.0, 7.0, 7.0)
    assert quantiles([10, 1, 3, 2, 100, 7, 5]) == pytest.approx((2.2, 3.8, 6.2, 9.4))
    rng = random.Random(5)
    for n in (2, 5, 9, 50, 333):
        values = [rng.lognormvariate(5, 1.5) for _ in range(n)]
        assert quantiles(values) == pytest.approx(tuple(np.quantile(values, [.2, .4, .6, .8])))
    with pytest.raises(ValueError, match="no values"):
        quantiles([])


def test_ties_are_nudged_up_by_the_smallest_step():
    assert strictly_ascending([1, 1, 1, 2], 1) == (1, 2, 3, 4)
    assert strictly_ascending([1, 3, 3, 9], 1) == (1, 3, 4, 9)
    assert strictly_ascending([100.0] * 4, 0.01, digits=2) == (100.0, 100.01, 100.02, 100.03)
    assert strictly_ascending([2, 5, 8, 13], 1) == (2, 5, 8, 13)  # already ascending: kept


def test_each_axis_rounds_to_its_unit():
    # recency: whole days, at least one, ascending
    assert recency_cuts([0.2 * DAY_MS, 2.6 * DAY_MS, 2.9 * DAY_MS, 40.4 * DAY_MS]) == tuple(
        d * DAY_MS for d in (1, 3, 4, 40))
    # frequency: a count is whole, so a cut of 1.2 purchases is one of 2; float noise ignored
    assert frequency_cuts([1, 1, 1.2, 2.0000000000000004]) == (1, 2, 3, 4)
    assert frequency_cuts([1, 2, 4.5, 9]) == (1, 2, 5, 9)
    # monetary: cents
    assert monetary_cuts([99.994, 99.996, 250.123, 250.124]) == (99.99, 100.0, 250.12, 250.13)


def test_scores_split_customers_into_fifths_the_right_way_round():
    # ten customers: the i-th bought i days before AS_OF, i + 1 times, for 100 * (i + 1)
    customers = [(AS_OF - i * DAY_MS, i + 1, 100.0 * (i + 1)) for i in range(10)]
    found = from_values(AS_OF, customers)
    assert found.customers == 10 and found.as_of == AS_OF
    rfm = found.rfm
    assert rfm.monetary == (280.0, 460.0, 640.0, 820.0)
    assert rfm.frequency == (3, 5, 7, 9)  # 2.8, 4.6, 6.4, 8.2 rounded up
    assert rfm.recency_ms == tuple(d * DAY_MS for d in (2, 4, 5, 7))  # 1.8, 3.6, 5.4, 7.2
    assert rfm.source == "ClickHouse quintiles of 10 customers, 2026-11-18"
    scores = [rfm_of({"n": n, "r": r, "lp": lp}, AS_OF, rfm) for lp, n, r in customers]
    recency, frequency, monetary = zip(*scores)
    # the newest buyer scores R 5, the oldest 1; the most frequent / largest F 5 / M 5
    assert recency[0] == 5 and recency[-1] == 1 and list(recency) == sorted(recency, reverse=True)
    assert frequency[0] == 1 and frequency[-1] == 5 and list(frequency) == sorted(frequency)
    assert list(monetary) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]  # fifths of distinct values


def test_everyone_alike_still_gives_ascending_cuts():
    found = from_values(AS_OF, [(AS_OF - 3 * DAY_MS, 1, 50.0)] * 6)
    assert found.rfm.recency_ms == tuple(d * DAY_MS for d in (3, 4, 5, 6))
    assert found.rfm.frequency == (1, 2, 3, 4)
    assert found.rfm.monetary == (50.0, 50.01, 50.02, 50.03)


def test_fewer_than_five_customers_is_refused():
    with pytest.raises(ValueError, match="4 customers: at least 5"):
        from_values(AS_OF, [(AS_OF, 1, 10.0)] * 4)


def test_the_yaml_block_pastes_under_traits_in_a_pack():
    found = suggestion(1234, AS_OF, [5.4 * DAY_MS, 20 * DAY_MS, 61 * DAY_MS, 200 * DAY_MS],
                       [1, 1, 2, 4], [120.5, 480, 990.99, 4000])
    block = found.yaml()
    assert block.splitlines()[0] == "  rfm:"
    assert "    recency: [5d, 20d, 61d, 200d]" in block
    assert "    monetary: [120.50, 480, 990.99, 4000]" in block
    text = DEFAULT_PACK.read_text()
    start = text.index("  rfm:")
    end = text.index("\n", text.index("    monetary:")) + 1
    pack = load_pack_text(text[:start] + block + text[end:], base_dir=DEFAULT_PACK.parent)
    assert pack.traits.rfm == Rfm(tuple(d * DAY_MS for d in (5, 20, 61, 200)), (1, 2, 3, 4),
                                  (120.5, 480, 990.99, 4000),
                                  "ClickHouse quintiles of 1234 customers, 2026-11-18")
    assert found.as_json()["recency"] == ["5d", "20d", "61d", "200d"]
