"""The `parcours` command: `main` parses the arguments (streams/cli/main.py), one module per command."""
from streams.cli.main import main

__all__ = ["main"]
