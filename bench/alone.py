"""One section of `make bench` by itself: `python -m bench.<section> [--events N]`, with the
worker's collector settings, on the synthetic touchpoints of `make bench`."""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable


def run_alone(doc: str, measure: Callable[[Any, list[bytes]], Any],
              show: Callable[[Any, Any], Any], events: int = 100_000) -> None:
    """Parse `--events`, make the touchpoints, `measure(console, raws)`, `show(console, result)`."""
    from rich.console import Console

    from bench.run import make_events
    from streams.worker import gc_tuning

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--events", type=int, default=events)
    args = parser.parse_args()
    gc_tuning.tune()
    console = Console(width=130)
    started = time.perf_counter()
    show(console, measure(console, make_events(args.events)))
    console.print(f"({time.perf_counter() - started:.1f} s with the input's generation)")
