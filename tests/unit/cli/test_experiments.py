"""`parcours experiments` over real chDB rows: its figures against scipy applied directly to the
same counts, the sample-ratio warning, the date range, merged rows left out, the plot."""
from __future__ import annotations

import csv
import io

import orjson
import pytest
from scipy.stats import chi2_contingency, ttest_ind_from_stats
from scipy.stats.contingency import relative_risk

from sinks.clickhouse import close, connect
from sinks.migrations import migrate
from sinks.writer import ClickHouseSink
from tests.unit.cli.test_cli import one_line_error, run

DAY = 86_400_000
T0 = 1_795_000_000_000  # 2026-11-18
# (arm, control, share, profiles, converted, revenue of each converted profile)
ARMS = [("control", 1, 0.2, 400, 20, 50.0), ("A", 0, 0.4, 800, 64, 60.0),
        ("B", 0, 0.4, 790, 40, 40.0)]


def _rows(experiment: str, arms, at: int) -> list[dict]:
    rows = []
    for arm, control, share, profiles, converted, revenue in arms:
        for i in range(profiles):
            hit = i < converted
            rows.append({"experiment": experiment, "profile_id": f"p-{experiment}-{arm}-{i}",
                         "arm": arm, "control": control, "share": share, "rule": "r",
                         "trigger_id": f"t-{arm}-{i}", "entered_at": at + i, "converted": int(hit),
                         "conversions": int(hit), "revenue": revenue if hit else 0.0,
                         "version": 2 if hit else 1, "is_deleted": 0})
    return rows


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory) -> str:
    url = f"chdb://{tmp_path_factory.mktemp('experiments') / 'ch'}"
    client = connect(url)
    migrate(client)
    sink = ClickHouseSink(client)
    rows = _rows("copy", ARMS, T0)
    # a profile merged into another's entry: its row is deleted, it does not count
    rows.append({**rows[0], "profile_id": "p-merged", "version": 3, "is_deleted": 1})
    # an older version of a converted row: FINAL keeps the newest
    rows.append({**rows[1], "converted": 0, "conversions": 0, "revenue": 0.0, "version": 1})
    # a second experiment whose split is far from its weights, entered 10 days later
    rows += _rows("skewed", [("control", 1, 0.5, 300, 30, 10.0), ("X", 0, 0.5, 700, 70, 10.0)],
                  T0 + 10 * DAY)
    sink.write("experiment_exposures", rows)
    sink.close()
    close(client)
    return url


def test_interval_and_p_values_are_scipy_on_the_same_counts(clickhouse):
    proc = run("experiments", "--experiment", "copy", "--format", "json",
               "--clickhouse", clickhouse)
    assert proc.returncode == 0, proc.stderr
    out = {row["arm"]: row for row in orjson.loads(proc.stdout)}
    assert list(out) == ["control", "A", "B"] and out["control"]["control"] is True
    _, _, _, n0, c0, r0 = ARMS[0]
    for arm, _, _, n, c, r in ARMS[1:]:
        row = out[arm]
        assert (row["profiles"], row["conversions"]) == (n, c)
        assert row["rate"] == pytest.approx(c / n)
        assert row["revenue_per_profile"] == pytest.approx(c * r / n)
        rr = relative_risk(c, n, c0, n0)
        low, high = rr.confidence_interval(0.95)
        assert row["lift"] == pytest.approx(rr.relative_risk - 1)
        assert (row["lift_ci_low"], row["lift_ci_high"]) == (pytest.approx(low - 1),
                                                             pytest.approx(high - 1))
        table = [[c, n - c], [c0, n0 - c0]]
        assert row["p_value"] == pytest.approx(chi2_contingency(table, correction=False).pvalue)

        def stats(n, c, r):  # mean and sample sd of c profiles at r, n - c at 0
            mean = c * r / n
            return mean, ((c * (r - mean) ** 2 + (n - c) * mean ** 2) / (n - 1)) ** 0.5, n

        welch = ttest_ind_from_stats(*stats(n, c, r), *stats(n0, c0, r0), equal_var=False)
        assert row["revenue_p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    assert out["control"]["p_value"] is None and out["control"]["lift"] is None
    assert set(out["A"]) == {"experiment", "arm", "control", "profiles", "conversions", "rate",
                             "revenue_per_profile", "lift", "lift_ci_low", "lift_ci_high",
                             "p_value", "revenue_p_value", "srm_p_value"}
    assert out["A"]["srm_p_value"] > 0.001 and "sample ratio" not in proc.stderr


def test_a_split_far_from_its_weights_warns_and_the_range_selects_entries(clickhouse):
    table = run("experiments", "--clickhouse", clickhouse)
    assert table.returncode == 0, table.stderr
    assert "copy" in table.stdout and "skewed" in table.stdout
    assert "warning: experiment skewed: sample ratio mismatch" in table.stdout
    assert "warning: experiment copy" not in table.stdout
    recent = run("experiments", "--format", "csv", "--from", "2026-11-25",
                 "--clickhouse", clickhouse)
    rows = list(csv.DictReader(io.StringIO(recent.stdout)))
    assert {r["experiment"] for r in rows} == {"skewed"}  # entered 10 days after copy
    assert "sample ratio mismatch" in recent.stderr  # the CSV on stdout stays parseable
    one_line_error(run("experiments", "--experiment", "nope", "--clickhouse", clickhouse),
                   "no entries in experiment 'nope'", "copy, skewed")
    one_line_error(run("experiments", "--from", "soon", "--clickhouse", clickhouse),
                   "--from 'soon' is not a date")


def test_the_plot_draws_each_arm(clickhouse, tmp_path):
    proc = run("experiments", "--experiment", "copy", "--plot", str(tmp_path / "lift.png"),
               "--clickhouse", clickhouse)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "lift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
