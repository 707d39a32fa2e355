"""Identity graph at 1M identifiers: lookups+links per second and bytes of state per identifier.

Workload: people with 3-5 identifiers (cookies, a device, a hashed email, sometimes a user id); each
person's events carry one or two of their identifiers, so most events link a new identifier to a
known one and some merge two profiles. Baseline, same run: a bare dict lookup + insert per
identifier (the floor any identifier map pays in Python).
"""
from __future__ import annotations

import gc
import hashlib
import os
import random
import sys
import time

from streams.identity.graph import IdentityGraph

BATCH = 2000  # flush every N events, as the journey agent does


def make_events(n_ids: int, seed: int = 1) -> tuple[list[tuple[dict, str, int]], int]:
    rng = random.Random(seed)
    events = []
    made = 0
    person = 0
    t = 1_790_000_000_000
    while made < n_ids:
        person += 1
        ids = [("cookie", f"c-{person}-{k}") for k in range(rng.randint(1, 3))]
        ids.append(("device", f"d-{person}"))
        ids.append(("email", hashlib.sha256(f"p{person}@example.com".encode()).hexdigest()))
        if rng.random() < 0.3:
            ids.append(("user", f"u-{person}"))
        made += len(ids)
        rng.shuffle(ids)
        # first events each carry one identifier, later ones pair them up (links and merges)
        for kind, value in ids:
            t += rng.randint(1, 5000)
            events.append(({kind: value}, f"e{len(events)}", t))
        for a, b in zip(ids, ids[1:]):
            t += rng.randint(1, 5000)
            events.append(({a[0]: a[1], b[0]: b[1]} if a[0] != b[0] else {a[0]: a[1]},
                           f"e{len(events)}", t))
    return events, made


def run_graph(events) -> tuple[IdentityGraph, dict, dict]:
    ids: dict = {}
    profiles: dict = {}
    graph = IdentityGraph(ids, profiles)
    for i, (event_ids, event_id, at) in enumerate(events, 1):
        graph.resolve(event_ids, event_id, at)
        if i % BATCH == 0:
            graph.flush()
    graph.flush()
    return graph, ids, profiles


def run_baseline(events) -> dict:
    table: dict = {}
    for event_ids, event_id, _at in events:
        for kind, value in event_ids.items():
            key = f"{kind}:{value}"
            if table.get(key) is None:
                table[key] = event_id
    return table


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def deep_size(*roots) -> int:
    """Bytes of every object reachable from `roots` (dicts, lists, strings, numbers), each once."""
    seen: set[int] = set()
    total = 0
    stack = list(roots)
    getsizeof = sys.getsizeof
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    return total


def bench(n_ids: int = 1_000_000) -> dict:
    events, _ = make_events(n_ids)
    touched = sum(len(e[0]) for e in events)
    gc.collect()
    started = time.perf_counter()
    run_baseline(events)
    base_s = time.perf_counter() - started
    gc.collect()
    before = rss_bytes()  # resident memory, allocator overhead included
    started = time.perf_counter()
    graph, ids, profiles = run_graph(events)
    graph_s = time.perf_counter() - started
    gc.collect()
    state_bytes = rss_bytes() - before
    n_identifiers = len(ids)
    object_bytes = deep_size(ids, profiles)
    return {
        "events": len(events), "identifiers": n_identifiers, "profiles": len(profiles),
        "graph_rate": touched / graph_s, "baseline_rate": touched / base_s,
        "events_per_s": len(events) / graph_s, "bytes_per_identifier": state_bytes / n_identifiers,
        "object_bytes_per_identifier": object_bytes / n_identifiers,
    }
