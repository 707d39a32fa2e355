"""Heuristic attribution models on paths computed by hand; credit sums to 1; idempotency."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.attribution import DAY_MS, PATH_MODELS, AttributionConfig, PathBook, credit_rows
from streams.state import BatchState

T = 1_795_000_000_000
# email 14 days before, display 7 days before, direct 1 day before, search at the conversion
PATH = [["e1", T - 14 * DAY_MS, "email", "c", "p1"], ["e2", T - 7 * DAY_MS, "display", "c", "p2"],
        ["e3", T - DAY_MS, "direct", None, None], ["e4", T, "search", "c", "p3"]]
CONVERSION = {"event_id": "buy", "event_time": T, "profile_id": "p",
              "properties": {"revenue": 200.0}}


def weights(model, path=PATH, **cfg):
    config = AttributionConfig(models=(model,), **cfg)
    rows = credit_rows(CONVERSION, path, config)
    by_touch = {r["touchpoint_id"]: r["credit"] for r in rows}
    return [by_touch.get(t[0], 0.0) for t in path]


def test_first_last_and_last_non_direct():
    assert weights("first_touch") == [1, 0, 0, 0]
    assert weights("last_touch") == [0, 0, 0, 1]
    assert weights("last_non_direct", PATH[:3]) == [0, 1, 0]  # direct is skipped
    assert weights("last_non_direct", [PATH[2]]) == [1]  # nothing else: the direct touch


def test_linear_and_position_based():
    assert weights("linear") == [0.25] * 4
    assert weights("position_based") == pytest.approx([0.4, 0.1, 0.1, 0.4])
    assert weights("position_based", PATH[:2]) == [0.5, 0.5]
    assert weights("position_based", PATH[:3], position_ends=0.3) == pytest.approx([0.3, 0.4, 0.3])


def test_time_decay_halves_credit_every_half_life():
    # raw weights 0.5^(14/7), 0.5^(7/7), 0.5^(1/7), 1 = 0.25, 0.5, 0.9057, 1 (sum 2.6557)
    raw = [0.25, 0.5, 0.5 ** (1 / 7), 1.0]
    assert weights("time_decay") == pytest.approx([w / sum(raw) for w in raw])
    raw = [0.5 ** 1, 0.5 ** 0.5, 0.5 ** (1 / 14), 1.0]
    assert weights("time_decay", half_life_days=14) == pytest.approx([w / sum(raw) for w in raw])


def test_revenue_credit_and_a_conversion_without_touches():
    rows = credit_rows(CONVERSION, PATH, AttributionConfig(models=("linear",)))
    assert [r["revenue_credit"] for r in rows] == [50.0] * 4
    (direct,) = credit_rows(CONVERSION, [], AttributionConfig(models=("linear",)))
    assert (direct["channel"], direct["credit"], direct["touchpoint_id"]) == ("direct", 1.0, "")


touches = st.lists(st.tuples(st.integers(0, 29 * DAY_MS),
                             st.sampled_from(["email", "direct", "search"])),
                   min_size=1, max_size=12, unique_by=lambda x: x[0])


@settings(max_examples=80, deadline=None)
@given(touches)
def test_every_model_credits_exactly_one_conversion(sample):
    path = sorted([[f"t{i}", T - dt, ch, None, None] for i, (dt, ch) in enumerate(sample)],
                  key=lambda t: t[1])
    rows = credit_rows(CONVERSION, path, AttributionConfig())
    for model in PATH_MODELS:
        assert sum(r["credit"] for r in rows if r["model"] == model) == pytest.approx(1.0)
        assert sum(r["revenue_credit"] for r in rows if r["model"] == model) == pytest.approx(200.0)


def test_a_replayed_conversion_is_credited_once():
    book = PathBook(BatchState({}), AttributionConfig(models=("linear",)))
    tp = {"event_id": "t", "event_time": T - DAY_MS, "type": "click", "channel": "display",
          "profile_id": "p", "context": {}, "properties": {}}
    conv = {**CONVERSION, "type": "purchase", "channel": "web", "context": {}}
    credits, paths = [], []
    book.on_event(tp, credits, paths)
    book.on_event(conv, credits, paths)
    book.on_event(dict(conv), credits, paths)  # delivered again (a replayed batch)
    assert [r["touchpoint_id"] for r in credits] == ["t"] and len(paths) == 1
