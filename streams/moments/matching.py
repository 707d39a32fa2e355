"""Matching a sequence or a count over a profile's recorded events, whatever their arrival order.

Entries are lists kept in time order by the engine: `[time, event_id, step, key, bindings]` for a
sequence, `[time, event_id, key, bindings]` for a count (`key` = the values of the rule's `same`
fields). Pure functions: the engine decides what to record and what a match consumes.
"""
from __future__ import annotations


def chain_bindings(match: list, at: int) -> dict:
    """Bindings of a multi-event moment: later events win (a product seen last, a store visited)."""
    bound: dict = {}
    for entry in match:
        bound.update(entry[at])
    return bound


def sequence_match(items: list, n_steps: int, j: int, eid: str, key: str,
                   within: int) -> list | None:
    """The events (one per step, in time order) of a match that uses event `eid` as step `j`, with
    the smallest span: the latest events before it for earlier steps, the earliest after it for
    later steps; None when there is none or its span exceeds `within`."""
    same = [x for x in items if x[3] == key]
    at = next((i for i, x in enumerate(same) if x[1] == eid and x[2] == j), None)
    if at is None:
        return None
    chain = [same[at]]
    i = at
    for step in range(j - 1, -1, -1):
        i -= 1
        while i >= 0 and (same[i][2] != step or same[i][1] in {c[1] for c in chain}):
            i -= 1
        if i < 0:
            return None
        chain.insert(0, same[i])
    i = at
    for step in range(j + 1, n_steps):
        i += 1
        while i < len(same) and (same[i][2] != step or same[i][1] in {c[1] for c in chain}):
            i += 1
        if i >= len(same):
            return None
        chain.append(same[i])
    if chain[-1][0] - chain[0][0] > within:
        return None
    return chain


def count_match(same: list, eid: str, at_least: int, within: int) -> list | None:
    """`at_least` events within `within` that include `eid` (the earliest such window), or None."""
    idx = next((i for i, x in enumerate(same) if x[1] == eid), None)
    if idx is None:
        return None
    for start in range(max(0, idx - at_least + 1), idx + 1):
        end = start + at_least - 1
        if end >= len(same):
            break
        if same[end][0] - same[start][0] <= within:
            return same[start:end + 1]
    return None
