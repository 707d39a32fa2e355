"""`parcours ddl`: the ClickHouse DDL, the single-node migrations or their cluster form."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("ddl", help="print the ClickHouse DDL (single node, or --cluster NAME)")
    p.add_argument("--cluster", default=None,
                   help="ReplicatedReplacingMergeTree + Distributed, ON CLUSTER NAME")
    p.set_defaults(func=run)


def run(args) -> int:
    """The ClickHouse DDL: the single-node migrations, or their cluster form."""
    from sinks.cluster import cluster_sql
    from sinks.migrations import single_node_sql

    print(cluster_sql(args.cluster) if args.cluster else single_node_sql(), end="")
    return 0
