"""The sharded journey (`streams.shards`): CPU per touchpoint of the sequencer and of each shard,
against the one-process `Pipeline` over the same touchpoints in the same run.

Input: the synthetic populations of `make bench` (raw JSON, as `bench/stages.py` gets them),
through `ingest_batch` (one input partition, with offsets), in the worker's batch size, each
batch decoded afresh from its stitch-hop JSON for every run (outside the timings). Rules: the
default pack. State: plain dicts.

- baseline: `Pipeline.process` per batch (each call flushes), then `end_of_input`;
- `LocalShards(4)` over the same batches, its sequencer and shard cores wrapped so that the CPU
  time of each call goes to the component it ran in: the sequencer's `process`, `end_of_input`
  and `flush` (event time, identity, placement), each shard's `process`, `transfer` and `flush`
  (per-profile stages, hand-offs, parking). CPU time is `time.process_time`. The sequencer's
  figure is per input touchpoint; a shard's is per touchpoint of that shard (its event items);
  what is left of the LocalShards total is the in-process hop (transfers through JSON, outputs
  gathered).

The modelled ceilings: 1e6 / us touchpoints/s for the sequencer (all the input goes through it)
and for each shard (of its own touchpoints); the sharded journey's is the smallest of the
sequencer's and of each shard's divided by its share of the input. Also counted: merges whose
state crossed shards (per 1,000 touchpoints and per second of input at the sequencer's ceiling),
transfers, and touchpoints that reached a parked profile. How long a profile stays parked in
wall time is a worker figure (the transfer's round trip through Kafka): in LocalShards every
transfer arrives within the same call, so the delay is zero by construction and not reported.

The run must give the right answer: LocalShards(4) has to emit as many triggers and credits as
the Pipeline, and as many stitched touchpoints (an assert). `python -m bench.shards [--events N]`
runs this section alone.
"""
from __future__ import annotations

import functools
import gc
import time

import orjson
from rich.console import Console
from rich.table import Table

from bench.alone import run_alone
from streams.ingest import OFFSET, SOURCE
from streams.ingest.normalise import ingest_batch
from streams.moments.rules.loader import load_default
from streams.pipeline import Pipeline
from streams.shards import LocalShards
from streams.shards.items import EVENT

SHARDS = 4
TOPIC = "parcours.touchpoints"
SEQUENCER_TARGET_US, SHARD_TARGET_US = 10.0, 40.0


class _Timed:
    """A component with the CPU time of its `TIMED` calls; every other attribute passed through."""

    TIMED = frozenset({"process", "transfer", "flush", "end_of_input"})

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    def _call(self, fn, *args, **kwargs):
        started = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds += time.process_time() - started

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        return functools.partial(self._call, attr) if name in self.TIMED else attr


class _TimedShard(_Timed):
    """A shard core, also counting its touchpoints and those it queued behind a parked profile
    (every parked profile resumes within the LocalShards call, so after `process` the queues
    hold exactly what this call parked)."""

    def __init__(self, inner):
        super().__init__(inner)
        self.events = self.parked_events = 0

    def process(self, items, out=None):
        self.events += sum(1 for item in items if item["k"] == EVENT)
        result = self._call(self.inner.process, items, out)
        self.parked_events += sum(1 for _, queue in self.inner.parked.items()
                                  for item in queue if item["k"] == EVENT)
        return result


def ingested(raws: list[bytes], batch: int) -> tuple[list[bytes], int]:
    """Each batch of `raws` through ingest, as the stitch hop's JSON (decoded once per run), and
    the number of touchpoints."""
    chunks, n = [], 0
    for i in range(0, len(raws), batch):
        good, _dead = ingest_batch([(r, TOPIC, 0, i + j) for j, r in enumerate(raws[i:i + batch])],
                                   source_key=SOURCE, offset_key=OFFSET)
        chunks.append(orjson.dumps(good))
        n += len(good)
    return chunks, n


def _run(journey, chunks: list[bytes], keep) -> float:
    """CPU seconds of `journey` (each call flushes) over the batches, then the end of input;
    `keep(answer)` after each call, outside the timing."""
    seconds = 0.0
    for chunk in [*chunks, None]:
        batch = orjson.loads(chunk) if chunk is not None else None
        started = time.process_time()
        out = journey.process(batch) if batch is not None else journey.end_of_input()
        seconds += time.process_time() - started
        keep(out)
        del out, batch  # freed outside the timing: what becomes of the outputs is the shell's
    return seconds


class _Counts(dict):
    def __init__(self):
        super().__init__(dict.fromkeys(("triggers", "credits", "stitched"), 0))

    def __call__(self, out) -> None:
        for name in self:
            self[name] += len(getattr(out, name))


def _sharded(chunks: list[bytes], rules, shards: int) -> dict:
    local = LocalShards(shards, rules=rules)
    local.sequencer = sequencer = _Timed(local.sequencer)
    local.cores = cores = [_TimedShard(core) for core in local.cores]
    counts = _Counts()
    seconds = _run(local, chunks, counts)
    return {"seconds": seconds, "counts": dict(counts), "sequencer_s": sequencer.seconds,
            "shard_s": [core.seconds for core in cores], "shard_events": [c.events for c in cores],
            "parked_events": sum(c.parked_events for c in cores), "parked": local.parked,
            "transfers": local.transfers, "cross_merges": local.cross_merges}


def bench_shards(raws: list[bytes], batch: int = 2000, shards: int = SHARDS) -> dict:
    """The figures of the module docstring, over `raws`."""
    rules = load_default()
    chunks, n = ingested(raws, batch)
    gc.collect()
    expected = _Counts()
    pipeline_s = _run(Pipeline(rules=rules), chunks, expected)
    gc.collect()
    s = _sharded(chunks, rules, shards)
    gc.collect()
    assert s["counts"] == expected, (f"LocalShards({shards}) gave {s['counts']}, the Pipeline "
                                     f"{dict(expected)}: these figures are of a wrong run")
    seq_us = s["sequencer_s"] / n * 1e6
    shard_us = [sec / max(1, ev) * 1e6 for sec, ev in zip(s["shard_s"], s["shard_events"])]
    ceiling = min([n / s["sequencer_s"]] + [n / sec for sec in s["shard_s"] if sec > 0])
    return {"events": n, "batch": batch, "shards": shards, "outputs": dict(expected),
            "pipeline_us": pipeline_s / n * 1e6, "sequencer_us": seq_us,
            "shard_us": shard_us, "shard_events": s["shard_events"],
            "local_us": s["seconds"] / n * 1e6,
            "hop_us": (s["seconds"] - s["sequencer_s"] - sum(s["shard_s"])) / n * 1e6,
            "sequencer_ceiling_per_s": 1e6 / seq_us,
            "shard_ceiling_per_s": [1e6 / us if us > 0 else None for us in shard_us],
            "sharded_ceiling_per_s": ceiling,
            "cross_merges": s["cross_merges"], "transfers": s["transfers"],
            "parked_profiles": s["parked"], "parked_events": s["parked_events"],
            "parked_share": s["parked_events"] / n,
            "cross_merges_per_1000": s["cross_merges"] / n * 1000,
            "cross_merges_per_s_at_ceiling": s["cross_merges"] / n * 1e6 / seq_us}


def _mark(us: float, target: float) -> str:
    return f"<= {target:g} us: " + ("[green]met[/]" if us <= target else "[red]missed[/]")


def print_shards(console: Console, r: dict) -> None:
    table = Table(title=f"the sharded journey, {r['events']:,} touchpoints in batches of "
                        f"{r['batch']:,}, {r['shards']} shards in one process (CPU, default rules)")
    for col in ("what", "us per touchpoint", "ratio vs Pipeline", "ceiling, touchpoints/s",
                "target"):
        table.add_column(col, justify="right" if col != "what" else "left")
    base = r["pipeline_us"]
    table.add_row("Pipeline, the whole journey (baseline)", f"{base:,.1f}", "1.000",
                  f"{1e6 / base:,.0f}", "")
    table.add_row("sequencer: event time, identity, placement", f"{r['sequencer_us']:,.1f}",
                  f"{r['sequencer_us'] / base:.3f}", f"{r['sequencer_ceiling_per_s']:,.0f}",
                  _mark(r["sequencer_us"], SEQUENCER_TARGET_US))
    for i, (us, events) in enumerate(zip(r["shard_us"], r["shard_events"])):
        table.add_row(f"shard {i}: {events:,} touchpoints ({events / r['events']:.0%})",
                      f"{us:,.1f}", f"{us / base:.3f}", f"{1e6 / us:,.0f}" if us > 0 else "",
                      _mark(us, SHARD_TARGET_US))
    table.add_row(f"LocalShards({r['shards']}) in all (hop {r['hop_us']:,.1f} us)",
                  f"{r['local_us']:,.1f}", f"{r['local_us'] / base:.3f}", "", "")
    console.print(table)
    console.print(f"modelled ceiling with {r['shards']} shards (the sequencer's, or the busiest "
                  f"shard's over its share of the input): {r['sharded_ceiling_per_s']:,.0f} "
                  f"touchpoints/s; same outputs as the Pipeline: {r['outputs']['triggers']:,} "
                  f"triggers, {r['outputs']['credits']:,} credits")
    console.print(f"cross-shard merges: {r['cross_merges']:,} ({r['cross_merges_per_1000']:.2f} "
                  f"per 1,000 touchpoints: {r['cross_merges_per_s_at_ceiling']:,.0f}/s of input "
                  f"at the sequencer's ceiling); transfers: {r['transfers']:,}; parkings: "
                  f"{r['parked_profiles']:,}; touchpoints that reached a parked profile: "
                  f"{r['parked_events']:,} ({r['parked_share']:.2%}; a floor: here a profile "
                  "waits only until the end of its batch)")
    console.print("how long a parked profile waits is a worker figure (a transfer's round trip "
                  "through Kafka: the worker bench); in LocalShards it is zero by construction")


def main() -> None:
    run_alone(__doc__, lambda console, raws: bench_shards(raws), print_shards)


if __name__ == "__main__":
    main()
