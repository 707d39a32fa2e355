"""`parcours rules check FILE`: validate a moment rule pack; every error names its line."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("rules", help="moment rule packs")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    q = rules_sub.add_parser("check", help="validate a rule pack; errors name their line")
    q.add_argument("file")
    q.set_defaults(func=run)


def run(args) -> int:
    """`rules check`: 0 when the pack is valid, 1 with one line per mistake (loader.check_main)."""
    from streams.moments.rules.loader import check_main

    return check_main(args.file)
