"""Traits benchmark: what the traits stage costs the pipeline, and what it keeps per profile.

The same synthetic touchpoints through `Pipeline.process` three ways, alternated, the best of
three each, with the garbage collector tuned as the worker and replay tune it: the default pack
as shipped (traits and its 4 audiences); the same pipeline with the traits stage taken out (the
baseline: nothing else changes, the rules that read traits see none); and the traits stage
without audiences. The difference is the stage's cost in microseconds per touchpoint (target: at
most 10). The state it keeps is reported in bytes of JSON per profile (mean, 99th percentile,
largest), with the `profile_traits` rows and audience records written.

Alone: `python -m bench.traits [N]`.
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace

import orjson

from bench.moments import ingested
from streams.moments.rules.loader import load_default
from streams.pipeline import Pipeline
from streams.worker import gc_tuning


def bench_traits(raws: list[bytes], batch: int = 5000, rounds: int = 3) -> dict:
    batches = ingested(raws, batch)
    pack = load_default()
    gc_tuning.tune()  # the collector as `parcours worker` and `parcours replay` run it
    gc_tuning.freeze()  # the input batches: not a worker's state

    def run(rules, with_traits: bool = True) -> tuple[float, Pipeline, int, int]:
        pipeline = Pipeline(rules=rules)
        if not with_traits:
            pipeline.stages = [s for s in pipeline.stages if s is not pipeline.traits]
        rows = records = 0
        started = time.perf_counter()
        for good in batches:
            out = pipeline.process([dict(tp) for tp in good])
            rows += len(out.traits)
            records += len(out.audiences)
        return time.perf_counter() - started, pipeline, rows, records

    without = with_ = no_audiences = float("inf")
    for _ in range(rounds):
        without = min(without, run(pack, with_traits=False)[0])
        seconds, pipeline, rows, records = run(pack)
        with_ = min(with_, seconds)
        no_audiences = min(no_audiences, run(replace(pack, audiences=()))[0])
    n = sum(len(g) for g in batches)
    sizes = sorted(len(orjson.dumps(v)) for v in pipeline.states["traits"].backing.values())
    return {"events": n, "audiences": len(pack.audiences), "rate": n / with_,
            "without_rate": n / without, "traits_us": (with_ - without) / n * 1e6,
            "audiences_us": (with_ - no_audiences) / n * 1e6, "rows": rows, "records": records,
            "profiles": len(sizes), "state_mean": sum(sizes) / max(1, len(sizes)),
            "state_p99": sizes[int(0.99 * (len(sizes) - 1))] if sizes else 0,
            "state_max": sizes[-1] if sizes else 0}


def report(console, t: dict) -> None:
    from rich.table import Table

    table = Table(title=f"traits stage, {t['events']:,} touchpoints, {t['audiences']} audiences")
    for col in ("what", "touchpoints/s", "ratio vs pipeline without traits"):
        table.add_column(col, justify="right" if col != "what" else "left")
    table.add_row("pipeline without the traits stage (baseline)", f"{t['without_rate']:,.0f}",
                  "1.000")
    table.add_row("pipeline with traits and audiences (default pack)", f"{t['rate']:,.0f}",
                  f"{t['rate'] / t['without_rate']:.3f}")
    console.print(table)
    verdict = "within" if t["traits_us"] <= 10 else "OVER"
    console.print(f"traits cost {t['traits_us']:+.2f} us per touchpoint ({verdict} the 10 us "
                  f"target; audiences {t['audiences_us']:+.2f} us of it; best of 3 each); "
                  f"{t['rows']:,} profile_traits rows, {t['records']:,} audience records; "
                  f"state {t['state_mean']:,.0f} B JSON per profile on average, "
                  f"p99 {t['state_p99']:,} B, "
                  f"largest {t['state_max']:,} B ({t['profiles']:,} profiles)")


def main() -> None:
    from rich.console import Console

    from bench.run import make_event_dicts

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    raws = [orjson.dumps(e) for e in make_event_dicts(n)]
    report(Console(), bench_traits(raws))


if __name__ == "__main__":
    main()
