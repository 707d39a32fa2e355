"""The ClickHouse DDL for a cluster, derived from the single-node migrations
(`sinks/migrations.py`).

Each table `t` becomes, ON CLUSTER:
- `t_local`: the same columns, with the Replicated variant of its engine
  (ReplicatedReplacingMergeTree with the usual `/clickhouse/tables/{shard}/{database}/t_local` path
  and `{replica}` macro);
- `t`: a Distributed table over `t_local`, sharded by a hash of the table's ORDER BY key, so the
  rows that ReplacingMergeTree collapses (the same key) always land on the same shard, and `FINAL`
  stays exact per shard.
Views keep their names and read the Distributed tables. Column changes (ALTER ... ADD COLUMN) go to
both tables. The worker writes to and reads from the same names as on one node, so nothing else
changes; apply this DDL (`parcours ddl --cluster NAME`) before the first worker starts: its own
migrations then find every table and column in place.
"""
from __future__ import annotations

import re

from sinks.migrations import MIGRATIONS

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \(")
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
_ORDER = re.compile(r"^ORDER BY (.+)$", re.M)
_ALTER = re.compile(r"^ALTER TABLE (\w+) (.*)$", re.S)
_VIEW = re.compile(r"CREATE VIEW IF NOT EXISTS (\w+) AS")


def _table(statement: str, cluster: str) -> list[str]:
    name = _CREATE.search(statement).group(1)
    local = f"{name}_local"
    body = _CREATE.sub(f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER '{cluster}' (", statement,
                       count=1)
    engine = _ENGINE.search(body)
    args = [f"'/clickhouse/tables/{{shard}}/{{database}}/{local}'", "'{replica}'"]
    if engine.group(2):
        args.append(engine.group(2))
    replicated = f"ENGINE = Replicated{engine.group(1)}({', '.join(args)})"
    body = body[:engine.start()] + replicated + body[engine.end():]
    # replicated tables deduplicate inserts (and their tokens) through Keeper
    body = body.replace("non_replicated_deduplication_window", "replicated_deduplication_window")
    key = _ORDER.search(statement).group(1).strip()
    key = key[1:-1] if key.startswith("(") and key.endswith(")") else key
    distributed = (f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER '{cluster}' AS {local}\n"
                   f"ENGINE = Distributed('{cluster}', currentDatabase(), {local}, "
                   f"cityHash64({key}))")
    return [body.strip(), distributed]


def cluster_statements(cluster: str) -> list[str]:
    """Every statement of every migration, for a cluster named `cluster` (ON CLUSTER)."""
    out: list[str] = []
    for _version, _name, statements in MIGRATIONS:
        for statement in statements:
            text = statement.strip()
            if _CREATE.search(text):
                out.extend(_table(text, cluster))
            elif (alter := _ALTER.match(text)):
                table, change = alter.groups()
                out.append(f"ALTER TABLE {table}_local ON CLUSTER '{cluster}' {change}")
                out.append(f"ALTER TABLE {table} ON CLUSTER '{cluster}' {change}")
            elif _VIEW.search(text):
                out.append(_VIEW.sub(lambda m: f"CREATE VIEW IF NOT EXISTS {m.group(1)} "
                                               f"ON CLUSTER '{cluster}' AS", text, count=1))
            else:
                raise ValueError(f"no cluster form for: {text[:60]}")
    return out


def cluster_sql(cluster: str) -> str:
    return "\n\n".join(s.rstrip(";") + ";" for s in cluster_statements(cluster)) + "\n"
