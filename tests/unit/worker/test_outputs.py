"""Table.to_row: the compiled fast path gives exactly what the checked, column-by-column conversion
gives, for the pipeline's rows and for any values."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sinks.tables import TABLES

T0 = 1763622900000  # 2025-11-20T07:15:00Z in epoch ms


def test_compiled_rows_equal_the_checked_rows_for_everything_the_pipeline_writes():
    """Table.to_row's compiled fast path gives exactly what the column-by-column checked path gives,
    for every row of every table a pipeline run produces, and is the path those rows take."""
    from streams import simulate
    from streams.ingest.normalise import ingest_batch
    from streams.pipeline import Pipeline
    from streams.worker.outputs import dead_letter_rows, table_rows

    start = datetime(2026, 11, 2, 7, 0, tzinfo=timezone.utc)
    population = simulate.Population(profiles=200, seed=5, start=start)
    raws = [json.dumps(e).encode() for e in simulate.in_time_order(
        simulate.martin_journey(start), population.events())]
    good, dead = ingest_batch([(raw, "t", 0, i) for i, raw in enumerate(raws + [b"{not json"])])
    rows = table_rows(Pipeline().process(good), T0)
    rows["dead_letters"] = dead_letter_rows(dead)
    assert set(rows) >= {"touchpoints", "identity_map", "identity_events", "attribution_credit",
                         "triggers", "suppressions", "dead_letters"}
    for name, table_rows_ in rows.items():
        table = TABLES[name]
        for row in table_rows_:
            fast = table._fast(row)
            assert fast is not None, (name, row)
            assert repr(fast) == repr(table._checked_row(row)), name


def test_compiled_rows_leave_unusual_values_to_the_checked_path():
    table = TABLES["identity_events"]
    row = {"at": datetime(2026, 1, 1, tzinfo=timezone.utc), "kind": "merge", "survivor": "p",
           "absorbed": ("a", "b"), "identifiers": ["x"]}
    assert table._fast(row) is None  # a datetime and a tuple: the checked path converts them
    assert table.to_row(row) == (1767225600000, "merge", "p", ["a", "b"], ["x"], "", "")
    for bad, message in (({**row, "kind": 3}, "column 'kind': expected str"),
                         ({**row, "identifiers": ["x", 1]}, "column 'identifiers'"),
                         ({**row, "survivor": None}, "column 'survivor' is missing")):
        with pytest.raises(ValueError, match=message):
            table.to_row(bad)
    credit = TABLES["attribution_credit"]
    assert credit._fast({"conversion_id": "c", "conversion_time": 1, "profile_id": "p",
                         "model": "m", "touchpoint_id": "t", "touchpoint_time": 1, "channel": "web",
                         "credit": True, "computed_at": 2}) is None  # bool is not a number here
    with pytest.raises(ValueError, match="a row must be a dict"):
        credit.to_row(["not", "a", "dict"])


_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False),
    st.text(max_size=8), st.lists(st.text(max_size=4), max_size=3),
    st.tuples(st.text(max_size=4)), st.dictionaries(st.text(max_size=4), st.one_of(
        st.none(), st.integers(-10, 10), st.text(max_size=4)), max_size=3),
    st.just(datetime(2026, 1, 1, tzinfo=timezone.utc)))
_SMALL = st.one_of(st.none(), st.integers(-10, 10), st.floats(allow_nan=False), st.text(max_size=4),
                   st.booleans())
_VALID = {  # what each column kind accepts, in every form it accepts
    "str": st.text(max_size=8), "str?": st.one_of(st.none(), st.text(max_size=8)),
    "time": st.one_of(st.integers(0, 2**41), st.datetimes(timezones=st.just(timezone.utc))),
    "time?": st.one_of(st.none(), st.integers(0, 2**41),
                       st.datetimes(timezones=st.just(timezone.utc))),
    "json": st.one_of(st.none(), st.text(max_size=8), st.dictionaries(st.text(max_size=4), _SMALL,
                                                                      max_size=3)),
    "map": st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), _SMALL, max_size=3),
    "intmap": st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)),
                              st.one_of(st.none(), st.integers(0, 1)), max_size=3),
    "array": st.one_of(st.lists(st.text(max_size=4), max_size=3), st.tuples(st.text(max_size=4))),
    "float": st.one_of(st.integers(-2**53, 2**53), st.floats(allow_nan=False)),
    "int": st.integers(-2**63, 2**63 - 1),
    "rows": st.lists(st.tuples(st.integers(0, 3), st.text(max_size=4)), max_size=2),
}


@settings(max_examples=400, deadline=None)
@given(table=st.sampled_from(sorted(TABLES)), data=st.data())
def test_to_row_is_the_checked_conversion_whatever_the_values(table, data):
    """For any values, to_row (compiled fast path first) returns what the checked path returns,
    or raises the same ValueError: mostly valid values of every accepted form, some missing, some
    of any type."""
    spec = TABLES[table]
    row = {}
    for name, kind in spec.columns:
        choice = data.draw(st.sampled_from(("valid",) * 8 + ("missing", "any")), label=f"{name}?")
        if choice != "missing":
            row[name] = data.draw(_VALID[kind] if choice == "valid" else _ANY_VALUE, label=name)
    try:
        expected = spec._checked_row(row)
    except ValueError as exc:
        with pytest.raises(ValueError) as raised:
            spec.to_row(row)
        assert str(raised.value) == str(exc)
    else:
        actual = spec.to_row(row)
        # a missing column stamped with the clock (received_at...) is read twice: the ms may tick
        stamped = [i for i, (name, _kind) in enumerate(spec.columns)
                   if row.get(name) is None and callable(spec.defaults.get(name))]
        for i in stamped:
            assert abs(actual[i] - expected[i]) < 1000
        unstamped = lambda values: [v for i, v in enumerate(values) if i not in stamped]
        assert repr(unstamped(actual)) == repr(unstamped(expected))  # repr: 1 and 1.0 differ
