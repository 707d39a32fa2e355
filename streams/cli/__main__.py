"""`python -m streams.cli`: the `parcours` command."""
import sys

from streams.cli import main

sys.exit(main())
