"""The `parcours` command: `main` parses the arguments (streams/cli/main.py); one module per
command (worker, replay, simulate, attribution, forget, publish, ddl, demo, rules), and what they
share in streams/cli/common.py."""
from streams.cli.main import main

__all__ = ["main"]
