"""The deployment files agree with the code: they parse, name only settings the code reads, and
watch only metrics the worker exports; every setting the code reads is documented with a default."""
from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from streams.worker import metrics

ROOT = Path(__file__).resolve().parents[3]
SETTING = re.compile(r"\bPARCOURS_[A-Z_]*[A-Z]\b")


def _read_settings() -> set[str]:
    """Every PARCOURS_* variable the shipped code reads."""
    names: set[str] = set()
    for path in [p for package in ("streams", "sinks", "schemas")
                 for p in (ROOT / package).rglob("*.py")]:
        names |= set(SETTING.findall(path.read_text()))
    return names


def _deploy_files() -> list[Path]:
    return [ROOT / "docker-compose.yml", *sorted((ROOT / "deploy").rglob("*.y*ml"))]


def test_deployment_files_parse():
    for path in _deploy_files():
        docs = list(yaml.safe_load_all(path.read_text()))
        assert docs and all(d is not None for d in docs), path
    json.loads((ROOT / "deploy" / "grafana" / "parcours-dashboard.json").read_text())


def test_deployment_files_name_only_settings_the_code_reads():
    read = _read_settings()
    for path in _deploy_files():
        named = set(SETTING.findall(path.read_text()))
        assert named <= read, (f"{path.relative_to(ROOT)} sets {sorted(named - read)}, "
                               "which no code reads")


def test_every_setting_is_documented_with_a_default():
    readme = ROOT.joinpath("README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `PARCOURS_")]
    documented = {name for line in table for name in SETTING.findall(line.split("|")[1])}
    assert _read_settings() <= documented, sorted(_read_settings() - documented)
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == 3 and cells[2], f"no default documented: {line}"


def test_alerts_and_dashboard_watch_metrics_the_worker_exports():
    exported = set()
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if isinstance(name, str) and name.startswith("parcours_"):
            kind = getattr(value, "_type", "")
            exported |= {name, f"{name}_total"} if kind == "counter" else {name}
            if kind == "histogram":
                exported |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    texts = [(ROOT / "deploy" / "prometheus" / "alerts.yml").read_text(),
             (ROOT / "deploy" / "grafana" / "parcours-dashboard.json").read_text()]
    used = {m for text in texts for m in re.findall(r"\bparcours_[a-z_]+\b", text)}
    assert used and used <= exported, sorted(used - exported)


def test_clickhouse_ddl_files_are_current_and_parse(tmp_path):
    """deploy/clickhouse/*.sql are `parcours ddl` output; every cluster statement parses
    (ClickHouse's own parser, through chDB's formatQuery), and each table is replicated and
    distributed by its key."""
    import subprocess
    import sys

    from sinks.clickhouse import connect
    from sinks.cluster import cluster_statements
    from sinks.migrations import MIGRATIONS

    for args, name in (([], "single-node.sql"), (["--cluster", "parcours"], "cluster.sql")):
        printed = subprocess.run([sys.executable, "-m", "streams.cli", "ddl", *args],
                                 capture_output=True, text=True, check=True).stdout
        assert printed == (ROOT / "deploy" / "clickhouse" / name).read_text(), \
            f"deploy/clickhouse/{name} is stale: regenerate it with parcours ddl {' '.join(args)}"
    statements = cluster_statements("parcours")
    client = connect(f"chdb://{tmp_path / 'ch'}")
    for statement in statements:
        client.query("SELECT formatQuery({q:String})", parameters={"q": statement})
    tables = {s.split()[5] for _, _, group in MIGRATIONS for s in group if "CREATE TABLE" in s}
    for table in tables:
        local = next(s for s in statements if f"IF NOT EXISTS {table}_local ON CLUSTER" in s)
        assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/"
                in local)
        dist = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON"))
        assert f"Distributed('parcours', currentDatabase(), {table}_local, cityHash64(" in dist


def test_erasure_deletes_from_the_local_tables_on_a_cluster(tmp_path):
    """ClickHouse refuses DELETE on a Distributed table: on a cluster, `erase` deletes from the
    local tables ON CLUSTER, found from each Distributed table's definition; on one node, from the
    table."""
    from sinks.clickhouse import connect
    from sinks.cluster import cluster_statements
    from sinks.erasure import ERASE_WHERE, delete_target

    statements = cluster_statements("parcours")
    client = connect(f"chdb://{tmp_path / 'ch'}")
    for table, where in ERASE_WHERE.items():
        dist = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON"))
        as_created = dist.split("ENGINE = ", 1)[1]
        assert delete_target(table, as_created) == f"{table}_local ON CLUSTER 'parcours'"
        # system.tables shows the database evaluated and the names quoted
        as_shown = f"Distributed('parcours', 'analytics', '{table}_local', cityHash64(x))"
        target = delete_target(table, as_shown)
        assert target == f"analytics.{table}_local ON CLUSTER 'parcours'"
        client.query("SELECT formatQuery({q:String})",
                     parameters={"q": f"DELETE FROM {target} WHERE {where}"})
        assert delete_target(table, "ReplacingMergeTree(version) ORDER BY id") == table
