"""`parcours traits rfm`: RFM cut points from the customers in ClickHouse, to paste in a rule pack.

The quintiles of the live customers' recency, frequency and revenue in `profile_traits`
(`streams.traits.rfm`), printed as the `rfm:` block of a pack's `traits:` (or as JSON). This is
how the thresholds are refreshed: run it (weekly, say), review it, put it in the pack, restart
the workers; each profile's score follows at its next change.
"""
from __future__ import annotations

import sys

import orjson

from streams import config
from streams.cli.common import open_clickhouse


def add_parser(sub) -> None:
    p = sub.add_parser("traits", help="profile traits: RFM cut points from ClickHouse")
    traits_sub = p.add_subparsers(dest="traits_command", required=True)
    q = traits_sub.add_parser("rfm", help="RFM cut points (quintiles of the live customers) as "
                                          "a rule pack's traits.rfm block")
    q.add_argument("--format", default="yaml", choices=("yaml", "json"))
    q.add_argument("--clickhouse", default=None)
    q.set_defaults(func=run)


def run(args) -> int:
    from streams.traits.rfm import MIN_CUSTOMERS, from_clickhouse

    settings = config.load(clickhouse_url=args.clickhouse)
    customers, found = from_clickhouse(open_clickhouse(settings.clickhouse_url))
    if found is None:
        print(f"parcours: {customers} customer{'' if customers == 1 else 's'} in profile_traits: "
              f"RFM quintiles need at least {MIN_CUSTOMERS}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(orjson.dumps(found.as_json(), option=orjson.OPT_INDENT_2).decode())
        return 0
    print("# parcours traits rfm: paste under `traits:` in the rule pack, review, restart the "
          "workers\n" f"# (a profile's score changes at its next change; as of {found.day})")
    print(found.yaml(), end="")
    return 0
