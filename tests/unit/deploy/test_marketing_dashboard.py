"""The marketers' Grafana dashboard (deploy/grafana/parcours-marketing.json): every panel's SQL runs
in real chDB, over a replayed simulation, and returns rows.

Grafana's ClickHouse data source expands its macros before sending a query; here they are
expanded the same way for a fixed range (the simulation's weeks): `$__dateFilter(col)`,
`$__timeFilter(col)`, `$__fromTime`, `$__toTime`, and the dashboard's `${model}` variable. A
macro the test does not know fails it, so a panel cannot use one that was never run."""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sinks.clickhouse import close, connect
from streams import simulate
from tests.unit.cli.test_cli import run

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "parcours-marketing.json"
START = datetime(2026, 11, 2, tzinfo=timezone.utc)
FROM, TO = "2026-10-01 00:00:00", "2026-12-31 00:00:00"
MACROS = {
    r"\$__dateFilter\((\w+)\)": rf"\1 BETWEEN toDate('{FROM[:10]}') AND toDate('{TO[:10]}')",
    r"\$__timeFilter\((\w+)\)": (rf"\1 BETWEEN toDateTime64('{FROM}', 3) "
                                 rf"AND toDateTime64('{TO}', 3)"),
    r"\$__fromTime\b": f"toDateTime('{FROM}')",
    r"\$__toTime\b": f"toDateTime('{TO}')",
    r"\$\{model\}": "linear",
}


def expand(sql: str) -> str:
    for pattern, replacement in MACROS.items():
        sql = re.sub(pattern, replacement, sql)
    assert "$" not in sql, f"a macro this test does not expand: {sql}"
    return sql


def _panels() -> list[dict]:
    return json.loads(DASHBOARD.read_text())["panels"]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory) -> str:
    base = tmp_path_factory.mktemp("marketing")
    journeys = base / "journeys.jsonl"
    simulate.write_jsonl(simulate.in_time_order(
        simulate.martin_journey(START),
        simulate.Population(profiles=300, seed=3, start=START).events()), journeys)
    url = f"chdb://{base / 'ch'}"
    done = run("replay", str(journeys), "--clickhouse", url, "--out", str(base / "out"))
    assert done.returncode == 0, done.stderr
    return url


@pytest.fixture
def client(replayed):
    """A client per test: chDB clients are closed between tests, and one process at a time may
    open the directory."""
    c = connect(replayed)
    yield c
    close(c)


def test_every_panel_reads_clickhouse_through_the_official_data_source():
    dashboard = json.loads(DASHBOARD.read_text())
    sources = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert sources["clickhouse"]["query"] == "grafana-clickhouse-datasource"
    titles = [p["title"] for p in _panels()]
    for wanted in ("Conversions credited per channel", "Credit by channel and model",
                   "Publisher payouts", "Triggers and suppressions by rule and reason",
                   "Experiment results per arm"):
        assert any(t.startswith(wanted) for t in titles), (wanted, titles)
    for panel in _panels():
        assert panel["datasource"]["type"] == "grafana-clickhouse-datasource", panel["title"]
        assert [t["rawSql"] for t in panel["targets"]], panel["title"]


@pytest.mark.parametrize("panel", _panels(), ids=lambda p: p["title"])
def test_the_panel_sql_runs_in_chdb_and_finds_rows(client, panel):
    for target in panel["targets"]:
        result = client.query(expand(target["rawSql"]))
        assert result.result_rows, (panel["title"], target["rawSql"])
        if target["queryType"] == "timeseries":  # Grafana needs a time column first
            assert result.column_names[0] == "time", result.column_names


def test_the_model_variable_lists_the_models_credited(client):
    variable = next(v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]
                    if v["name"] == "model")
    models = {row[0] for row in client.query(variable["query"]).result_rows}
    assert variable["current"]["value"] in models and "first_touch" in models
