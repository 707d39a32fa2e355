"""Attribution benchmark: heuristic credit for 1M conversions, Markov and Shapley from the counts of
1M closed paths (in-process and from ClickHouse), each against a baseline measured in the same run.

- heuristics: `credit_rows` for the 6 position models over BENCH_CONVERSIONS synthetic paths
  (1-8 touches); baseline: the same loop building one plain row per touch, no model math.
- data-driven: BENCH_PATHS synthetic paths (1-6 touches over 10 channels, conversion odds
  depending on the channels) -> their `path_record`s -> summed counts -> `markov_shares` and
  `shapley_credit`; then the same records in chDB (`attribution_paths`) and `credit_by` for
  markov and shapley, i.e. the SQL aggregation plus the solve, as `parcours attribution` runs it.
"""
from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from streams.attribution import DAY_MS, AttributionConfig, credit_rows, path_record
from streams.attribution.datadriven import markov_shares, shapley_credit

CHANNELS = ("search", "display", "email", "social", "video", "affiliate", "push", "sms", "web",
            "store")
LIFT = {"search": 0.06, "email": 0.05, "store": 0.08, "display": 0.02, "social": 0.02,
        "video": 0.01, "affiliate": 0.03, "push": 0.03, "sms": 0.02, "web": 0.01}
T0 = 1_795_000_000_000


def _paths(n: int, max_touches: int, seed: int) -> list[tuple[list, bool]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(1, max_touches)
        channels = [rng.choice(CHANNELS) for _ in range(k)]
        converted = rng.random() < 0.02 + sum(LIFT[c] for c in set(channels))
        out.append((channels, converted))
    return out


def bench_heuristics(n: int) -> dict:
    paths = _paths(n, 8, seed=1)
    config = AttributionConfig()
    touches = [[[f"t{i}-{j}", T0 - (len(ch) - j) * DAY_MS // 2, c, "camp", "pub"]
                for j, c in enumerate(ch)] for i, (ch, _) in enumerate(paths)]
    conversions = [{"event_id": f"c{i}", "event_time": T0, "profile_id": "p",
                    "properties": {"revenue": 100.0}} for i in range(n)]
    started = time.perf_counter()
    rows = 0
    for conv, path in zip(conversions, touches):  # baseline: one row per touch, no model
        for t in path:
            rows += bool({"conversion_id": conv["event_id"], "touchpoint_id": t[0], "channel": t[2],
                          "credit": 1.0})
    base_s = time.perf_counter() - started
    started = time.perf_counter()
    credited = 0
    for conv, path in zip(conversions, touches):
        credited += len(credit_rows(conv, path, config))
    return {"conversions": n, "rows": credited, "base_rate": n / base_s,
            "rate": n / (time.perf_counter() - started)}


def bench_datadriven(n: int) -> dict:
    paths = _paths(n, 6, seed=2)
    started = time.perf_counter()
    records = [path_record(f"p{i}", "x", T0 + i, [[f"t{i}-{j}", T0, c, None, None] for j, c in
                                                    enumerate(ch)], conv,
                           "purchase" if conv else "", 100.0 if conv else 0.0, (1, 2))
               for i, (ch, conv) in enumerate(paths)]
    records_s = time.perf_counter() - started
    started = time.perf_counter()  # what ClickHouse's GROUP BY does, in Python
    transitions: dict = {}
    sets: dict = {}
    for r in records:
        for order, a, b, k in r["transitions"]:
            if order == 1:
                transitions[(a, b)] = transitions.get((a, b), 0) + k
        acc = sets.setdefault(tuple(r["channel_set"]), [0, 0, 0.0])
        acc[0] += 1
        acc[1] += r["converted"]
        acc[2] += r["revenue"]
    count_s = time.perf_counter() - started
    started = time.perf_counter()
    shares = markov_shares(transitions)
    markov_s = time.perf_counter() - started
    started = time.perf_counter()
    credit = shapley_credit((k, *v) for k, v in sets.items())
    shapley_s = time.perf_counter() - started
    out = {"paths": n, "records_s": records_s, "count_s": count_s, "markov_s": markov_s,
           "shapley_s": shapley_s, "states": len({a for a, _ in transitions}),
           "sets": len(sets), "shares": shares, "shapley": credit}
    out.update(_from_clickhouse(records))
    return out


def _from_clickhouse(records: list[dict]) -> dict:
    from sinks.clickhouse import close, connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink
    from streams.cli.attribution import credit_by

    with tempfile.TemporaryDirectory() as tmp:
        client = connect(f"chdb://{Path(tmp) / 'ch'}")
        try:
            migrate(client)
            sink = ClickHouseSink(client, max_rows=50_000, max_pending=200_000)
            started = time.perf_counter()
            for i in range(0, len(records), 100_000):
                sink.write("attribution_paths",
                           [{**r, "computed_at": T0} for r in records[i:i + 100_000]])
                sink.flush()
            insert_s = time.perf_counter() - started
            started = time.perf_counter()
            (rows,), = client.query("SELECT count() FROM attribution_paths FINAL").result_rows
            scan_s = time.perf_counter() - started  # baseline: read every path once (FINAL)
            started = time.perf_counter()
            markov = credit_by(client, "markov")
            ch_markov_s = time.perf_counter() - started
            started = time.perf_counter()
            credit_by(client, "markov", order=2)
            ch_markov2_s = time.perf_counter() - started
            started = time.perf_counter()
            credit_by(client, "shapley")
            ch_shapley_s = time.perf_counter() - started
        finally:
            close(client)
    return {"ch_rows": rows, "insert_s": insert_s, "scan_s": scan_s, "ch_markov_s": ch_markov_s,
            "ch_markov2_s": ch_markov2_s, "ch_shapley_s": ch_shapley_s, "ch_markov": markov}
