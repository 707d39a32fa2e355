"""The `parcours` command. Every expected failure ends in one line on stderr and exit code 2.

`build_parser` asks each command's module (streams/cli/<command>.py) to add its subparser, which
names the function that runs it; `main` runs it and turns every expected failure (a
`ParcoursError`, streams/errors.py, or ClickHouse refusing rows) into `parcours: error: ...`.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from streams.errors import ParcoursError

# the modules streams/cli/<command>.py, in the order `parcours --help` lists them; imported when
# the parser is built, so importing one of them (streams.cli.replay) does not import them all
COMMANDS = ("demo", "worker", "replay", "publish", "ddl", "rules", "simulate", "forget",
            "attribution", "experiments", "profile", "traits", "preferences", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parcours", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"streams.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("PARCOURS_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sinks.writer import SinkError

    try:
        code = args.func(args)
    except SinkError as exc:  # ClickHouse refused the rows after the writer's retries
        print(f"parcours: error: {str(exc).splitlines()[0][:400]}", file=sys.stderr)
        return 2
    except ParcoursError as exc:  # every expected failure (streams/errors.py)
        print(f"parcours: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code or 0
