"""Helpers of the identity tests: run events through a graph, the reference model (connected
components), the invariants every state must keep."""
from __future__ import annotations

from collections import defaultdict

from streams.identity.graph import (
    IdentityGraph,
    profile_id_for,
)

T0 = 1_763_622_900_000  # 2025-11-20T07:15:00Z
H = 3_600_000


# ------------------------------------------------------------------------------------------------
# Helpers: run events, reference model, invariants
# ------------------------------------------------------------------------------------------------
def run(events, config, batch=None, ids=None, profiles=None):
    """Resolve `events` ((ids, event_id, event_time) tuples), flushing every `batch` events."""
    ids = {} if ids is None else ids
    profiles = {} if profiles is None else profiles
    graph = IdentityGraph(ids, profiles, config)
    out = []
    for i, (event_ids, event_id, event_time) in enumerate(events):
        out.append(graph.resolve(event_ids, event_id, event_time))
        if batch and (i + 1) % batch == 0:
            graph.flush()
    graph.flush()
    return graph, ids, profiles, out


def components(events, config):
    """Reference: identifier -> expected profile id, from union-find over the link graph."""
    parent: dict[str, str] = {}
    first: dict[str, int] = {}

    def find(k):
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for event_ids, _, t in events:
        keys = [f"{k}:{v}" for k, v in event_ids.items()]
        for k in keys:
            parent.setdefault(k, k)
            first[k] = min(first.get(k, t), t)
        for k in keys[1:]:
            a, b = find(keys[0]), find(k)
            if a != b:
                parent[a] = b
    groups = defaultdict(list)
    for k in parent:
        groups[find(k)].append(k)
    expected = {}
    for members in groups.values():
        anchor = min(members, key=lambda k: (first[k], config.rank(k.partition(":")[0]), k))
        for k in members:
            expected[k] = profile_id_for(anchor)
    return expected, first


def check_invariants(ids, profiles, config):
    """The two states agree, every record is well formed, limits hold, ids derive from anchors."""
    for key, profile_id in ids.items():
        assert profile_id in profiles, f"{key} points at missing {profile_id}"
        assert key in profiles[profile_id], f"{profile_id} does not list {key}"
    for profile_id, rec in profiles.items():
        assert isinstance(rec, dict)
        assert rec, f"empty profile {profile_id}"
        entries = [(fs, config.rank(key.partition(":")[0]), key) for key, fs in rec.items()]
        for key in rec:
            assert ids.get(key) == profile_id
        anchor = next(iter(rec))  # the anchor is the record's first key
        assert anchor == min(entries)[2]
        assert profile_id == profile_id_for(anchor)
        per_type = defaultdict(int)
        for key in rec:
            per_type[key.partition(":")[0]] += 1
        for t, n in per_type.items():
            limit = config.limit(t)
            assert limit is None or n <= limit, f"{profile_id} holds {n} {t}"


def exported(graph):
    return {f"{row['type']}:{row['value']}": row["profile_id"] for row in graph.export()}


def top_identifier(event_ids, config):
    t = min(event_ids, key=config.rank)
    return f"{t}:{event_ids[t]}"
