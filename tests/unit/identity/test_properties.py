"""Identity graph properties (hypothesis): components, limits, merges as renames, restart, forget,
atomic batches, the fast path."""
from __future__ import annotations

import contextlib
import copy
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.identity.graph import (
    Forgotten,
    IdentityConfig,
    IdentityGraph,
    Resolution,
    profile_id_for,
)
from tests.unit.identity.model import (
    T0,
    H,
    check_invariants,
    components,
    exported,
    run,
    top_identifier,
)

# ------------------------------------------------------------------------------------------------
# Strategies: a small identifier universe so that events collide, merge and conflict a lot
# ------------------------------------------------------------------------------------------------
# idfa: not in the priority list
TYPES = ["user", "loyalty", "email", "phone", "device", "cookie", "idfa"]
identifier_sets = st.dictionaries(st.sampled_from(TYPES), st.sampled_from(["0", "1", "2", "3"]),
                                  min_size=1, max_size=3)


@st.composite
def event_lists(draw, max_size=25):
    # uniform sizes: long histories merge, rename and refuse more
    size = draw(st.integers(1, max_size))
    sets = draw(st.lists(identifier_sets, min_size=size, max_size=size))
    times = draw(st.lists(st.integers(0, 12), min_size=len(sets), max_size=len(sets)))  # many ties
    return [(ids, f"e{i}", T0 + t * 1000) for i, (ids, t) in enumerate(zip(sets, times))]


TIGHT = IdentityConfig(max_per_type={"cookie": 2, "device": 2, "email": 1, "idfa": 2})


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------
@settings(max_examples=250, deadline=None)
@given(events=event_lists(), data=st.data())
def test_unlimited_profiles_are_the_connected_components_whatever_the_order(events, data):
    config = IdentityConfig.unlimited()
    expected, first = components(events, config)
    graph, ids, profiles, _ = run(events, config)
    assert exported(graph) == expected
    check_invariants(ids, profiles, config)
    for rec in profiles.values():  # every identifier's first-seen time is the min over its events
        for key, fs in rec.items():
            assert fs == first[key]

    shuffled = data.draw(st.permutations(events), label="arrival order")
    batch = data.draw(st.integers(1, 8), label="batch size")
    graph2, ids2, profiles2, _ = run(shuffled, config, batch=batch)
    assert ids2 == ids  # same profile ids for every identifier
    assert profiles2 == profiles  # same records, first-seen times and anchors


@settings(max_examples=250, deadline=None)
@given(events=event_lists(30), config=st.sampled_from([IdentityConfig(), TIGHT]))
def test_limits_hold_after_every_event(events, config):
    ids, profiles = {}, {}
    graph = IdentityGraph(ids, profiles, config)
    for event_ids, event_id, t in events:
        res = graph.resolve(event_ids, event_id, t)
        graph.flush()
        check_invariants(ids, profiles, config)
        # the event's highest-priority identifier always lands in the event's profile; every other
        # identifier either joined it too or is reported refused (and then is not in it)
        assert graph.profile_of(top_identifier(event_ids, config)) == res.profile_id
        refused = {r.identifier for r in res.refused}
        for t_, v in event_ids.items():
            key = f"{t_}:{v}"
            assert (key in refused) != (graph.profile_of(key) == res.profile_id)
        assert all(r.profile_id == res.profile_id and r.event_id == event_id for r in res.refused)
        for r in res.refused:
            assert r.reason.startswith(("unique type ", "max "))


@settings(max_examples=250, deadline=None)
@given(events=event_lists(30),
       config=st.sampled_from([IdentityConfig.unlimited(), IdentityConfig(), TIGHT]),
       batch=st.integers(1, 6))
def test_merges_rekey_downstream_state_and_changed_ids_track_the_identity_map(events, config,
                                                                              batch):
    """Apply every reported merge as a rename to per-profile state (the moments/paths tables), and
    every changed identifier to an identity_map mirror: both stay exact."""
    ids, profiles = {}, {}
    graph = IdentityGraph(ids, profiles, config)
    state: dict[str, list[str]] = {}     # profile -> event ids attributed to it (downstream state)
    identity_map: dict[str, str] = {}    # identifier -> profile, maintained from changed_ids only
    where: dict[str, str] = {}           # event id -> top identifier
    for i, (event_ids, event_id, t) in enumerate(events):
        res = graph.resolve(event_ids, event_id, t)
        for m in res.merges:
            assert m.kind == "merge" and m.event_id == event_id
            assert m.survivor not in m.absorbed and list(m.absorbed) == sorted(set(m.absorbed))
            assert list(m.identifiers) == graph.identifiers_of(m.survivor)
            bucket = state.setdefault(m.survivor, [])
            for absorbed in m.absorbed:
                assert graph.identifiers_of(absorbed) == []  # no longer a live profile
                bucket.extend(state.pop(absorbed, []))
        state.setdefault(res.profile_id, []).append(event_id)
        where[event_id] = top_identifier(event_ids, config)
        assert list(res.changed_ids) == sorted(set(res.changed_ids))
        for key in res.changed_ids:
            identity_map[key] = graph.profile_of(key)
        if (i + 1) % batch == 0:
            graph.flush()
    graph.flush()
    assert set(state) <= set(profiles)  # all downstream state is keyed by live profiles only
    for profile_id, event_ids in state.items():
        for event_id in event_ids:
            assert graph.profile_of(where[event_id]) == profile_id
    assert identity_map == exported(graph)


@settings(max_examples=150, deadline=None)
@given(events=event_lists(30),
       config=st.sampled_from([IdentityConfig.unlimited(), IdentityConfig(), TIGHT]),
       data=st.data())
def test_restart_from_flushed_tables_gives_the_same_result(events, config, data):
    """Half the events, flush, json round trip of both tables (changelog recovery), new graph,
    rest."""
    split = data.draw(st.integers(0, len(events)), label="restart after")
    batch = data.draw(st.integers(1, 7), label="batch size")
    _, ids_once, profiles_once, res_once = run(events, config, batch=batch)

    _, ids1, profiles1, res1 = run(events[:split], config, batch=batch)
    ids_recovered = json.loads(json.dumps(ids1))
    profiles_recovered = json.loads(json.dumps(profiles1))
    _, ids2, profiles2, res2 = run(events[split:], config, batch=batch,
                                   ids=ids_recovered, profiles=profiles_recovered)
    assert ids2 == ids_once
    assert profiles2 == profiles_once
    assert res1 + res2 == res_once


@settings(max_examples=150, deadline=None)
@given(events=event_lists(25),
       config=st.sampled_from([IdentityConfig.unlimited(), IdentityConfig(), TIGHT]),
       data=st.data())
def test_forget_removes_the_whole_profile_and_nothing_else(events, config, data):
    graph, ids, profiles, _ = run(events, config)
    victim = data.draw(st.sampled_from(sorted(ids)), label="identifier")
    victim_profile = ids[victim]
    held = graph.identifiers_of(victim_profile)
    others = copy.deepcopy({k: v for k, v in profiles.items() if k != victim_profile})
    other_ids = {k: v for k, v in ids.items() if v != victim_profile}

    gone = graph.forget(victim)
    assert gone == Forgotten(victim_profile, tuple(held))
    assert graph.profile_of(victim) is None and graph.identifiers_of(victim_profile) == []
    assert graph.forget(victim) is None
    graph.flush()
    assert profiles == others and ids == other_ids
    assert victim_profile not in ids.values()
    check_invariants(ids, profiles, config)
    # a forgotten person who comes back starts from scratch
    t, _, v = victim.partition(":")
    res = graph.resolve({t: v}, "back", T0 + 10 * H)
    assert res.profile_id == profile_id_for(victim) and res.merges == ()


@settings(max_examples=100, deadline=None)
@given(events=event_lists(30), config=st.sampled_from([IdentityConfig(), TIGHT]), data=st.data())
def test_a_batch_is_atomic_until_flush(events, config, data):
    split = data.draw(st.integers(0, len(events)), label="flushed prefix")
    graph, ids, profiles, _ = run(events[:split], config)
    ids_before, profiles_before = copy.deepcopy(ids), copy.deepcopy(profiles)
    for event_ids, event_id, t in events[split:]:
        graph.resolve(event_ids, event_id, t)
    assert ids == ids_before and profiles == profiles_before  # copy-on-write: backing untouched
    graph.discard()
    assert graph.pending == 0
    assert exported(graph) == ids_before


@contextlib.contextmanager
def fast_path_only():
    """Fail if resolve leaves the fast path (all identifiers known, one profile, nothing
    earlier)."""
    original = IdentityGraph._resolve_slow

    def refuse(self, *args):
        raise AssertionError(f"slow path taken for {args}")

    IdentityGraph._resolve_slow = refuse
    try:
        yield
    finally:
        IdentityGraph._resolve_slow = original


@settings(max_examples=100, deadline=None)
@given(events=event_lists(25),
       config=st.sampled_from([IdentityConfig.unlimited(), IdentityConfig(), TIGHT]))
def test_known_events_take_the_fast_path_and_write_nothing(events, config):
    graph, ids, profiles, _ = run(events, config)
    later = T0 + 100 * H
    with fast_path_only():
        for event_ids, event_id, _ in events:
            profile_id = graph.profile_of(top_identifier(event_ids, config))
            linked = {t: v for t, v in event_ids.items()
                      if graph.profile_of(f"{t}:{v}") == profile_id}
            assert graph.resolve(linked, event_id, later) == Resolution(profile_id)
    assert graph.pending == 0
