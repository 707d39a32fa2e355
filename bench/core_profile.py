"""The pure core's CPU per touchpoint, stage by stage, and where it goes (cProfile).

`bench/stages.py` measures every stage of the worker, chDB and changelogs included; this measures
only the three core stages, over the same kind of input (synthetic populations, one after the
other, as JSON bytes), in the worker's batch size, with the worker's collector settings:

- ingest: `ingest_batch` over the raw records;
- core: `Pipeline.process` with an empty rule pack (watermark, reorder, identity, attribution);
- moments: the default pack's extra cost over the empty pack (moments + preferences gate).

    python -m bench.core_profile [--events N] [--repeat R] [--profile ingest|core|full]

The raw records are written once to a file (`--raws`, default under /tmp) and read back on later
runs, so two checkouts timed one after the other (each on its own PYTHONPATH) see the same bytes.
It prints one JSON line per repeat, then the median of each stage.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
from pathlib import Path

import orjson

from bench.run import make_events
from streams.ingest import SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.moments.rules.model import RulePack
from streams.pipeline import STORES, Pipeline
from streams.worker import gc_tuning

TOPIC = "parcours.touchpoints"


def load_raws(n: int, path: Path) -> list[bytes]:
    if path.exists():
        raws = path.read_bytes().split(b"\n")[:-1]
        if len(raws) == n:
            return raws
    raws = make_events(n)  # as bench/run.py makes them
    path.write_bytes(b"\n".join(raws) + b"\n")
    return raws


def run(raws: list[bytes], batch: int = 2000, profile: str | None = None) -> dict:
    """Microseconds per touchpoint of ingest, the bare pipeline and the rules' extra cost."""
    pack = load_default()
    empty = RulePack(rules=(), preferences=pack.preferences)
    bare_stores = {name: {} for name in STORES}
    full_stores = {name: {} for name in STORES}
    bare, full = Pipeline(bare_stores, rules=empty), Pipeline(full_stores, rules=pack)
    seconds = {"ingest": 0.0, "core": 0.0, "full": 0.0}
    profiler = cProfile.Profile() if profile else None
    n = 0

    def timed(stage: str, step) -> object:
        """Run `step()`, add its time to `stage` (under cProfile when that stage is profiled)."""
        on = profiler is not None and profile == stage
        if on:
            profiler.enable()
        started = time.perf_counter()
        result = step()
        seconds[stage] += time.perf_counter() - started
        if on:
            profiler.disable()
        return result

    for i in range(0, len(raws), batch):
        records = [(r, TOPIC, 0, i + j) for j, r in enumerate(raws[i:i + batch])]
        good, _dead = timed("ingest", lambda: ingest_batch(records, source_key=SOURCE))
        n += len(good)
        # what the journey agent gets: the stitch hop's JSON, decoded (fresh dicts per pipeline)
        items = orjson.loads(orjson.dumps(good))
        copies = orjson.loads(orjson.dumps(good))
        timed("core", lambda: bare.process(copies, flush=False))
        bare.flush()
        timed("full", lambda: full.process(items, flush=False))
        full.flush()
    us = {k: v / n * 1e6 for k, v in seconds.items()}
    us["moments"] = us.pop("full") - us["core"]
    if profiler is not None:
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(35)
    return us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--raws", type=Path, default=None)
    parser.add_argument("--profile", choices=("ingest", "core", "full"), default=None)
    args = parser.parse_args()
    gc_tuning.tune()  # the collector settings of `parcours worker`
    raws = load_raws(args.events, args.raws or Path(f"/tmp/core-profile-{args.events}.jsonl"))
    runs = []
    for _ in range(1 if args.profile else args.repeat):
        gc.collect()
        us = run(raws, args.batch, args.profile)
        runs.append(us)
        print(orjson.dumps({k: round(v, 2) for k, v in us.items()}).decode(), flush=True)
    median = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    print(orjson.dumps({"median": median}).decode())


if __name__ == "__main__":
    main()
