"""Data-driven attribution from additive path counts: Markov removal effect and Shapley values.

Pure functions over aggregates, so credit for any date range comes from ClickHouse counts without
re-reading raw events (`streams/cli/attribution.py` runs the queries). The stream writes, for every
closed path (a conversion, or a journey with no conversion for a lookback of inactivity):
- its **transitions** at each configured Markov order k: states are the last k channels joined by
  ">" (shorter at the start of the path), plus "start", "conversion" and "null";
- its **channel set** (sorted, distinct), converted or not, with the conversion's revenue.

**Markov** (first order by default, any order k): transition probabilities are the counts
normalised per state. The conversion probability from "start" is solved exactly from the absorbing
chain: x = Q x + r over the transient states, with r the one-step probability of "conversion", i.e.
x = (I - Q)^-1 r (numpy), not by simulating walks. The removal effect of a channel c is
1 - P(conversion with every state containing c turned into "null") / P(conversion). Credit shares
are the removal effects normalised to 1; a channel's conversions (revenue) are the shares times
the conversions (revenue) of the range.

**Shapley** (exact up to MAX_SHAPLEY_CHANNELS channels in a path's set): the worth of a coalition S
of channels is the conversion rate of paths whose channel set is exactly S (0 when never seen).
Each converting channel set T splits its conversions (and revenue) among its channels in proportion
to their Shapley values in the game restricted to the subsets of T, computed by enumerating those
subsets; a channel that never adds anything gets nothing, and a set whose values are all zero
splits equally. Non-converting paths enter through the conversion rates.
"""
from __future__ import annotations

from itertools import combinations
from math import factorial
from typing import Iterable, Mapping, Sequence

START, CONVERSION, NULL = "start", "conversion", "null"
SEP = ">"
MAX_SHAPLEY_CHANNELS = 15


def path_states(channels: Sequence[str], order: int) -> list[str]:
    """The Markov states a path visits at `order`: the last `order` channels at each step."""
    return [SEP.join(channels[max(0, i - order + 1):i + 1]) for i in range(len(channels))]


def path_transitions(channels: Sequence[str], converted: bool,
                     order: int) -> dict[tuple[str, str], int]:
    """Transition counts of one path: start -> states -> conversion | null."""
    states = [START, *path_states(channels, order), CONVERSION if converted else NULL]
    counts: dict[tuple[str, str], int] = {}
    for a, b in zip(states, states[1:]):
        counts[(a, b)] = counts.get((a, b), 0) + 1
    return counts


def _channels_of(state: str) -> set[str]:
    return set(state.split(SEP))


def conversion_probability(transitions: Mapping[tuple[str, str], float],
                           removed: str | None = None) -> float:
    """P(reaching "conversion" from "start"), exactly, with channel `removed` (if any) sending
    every path that enters one of its states to "null"."""
    import numpy as np

    totals: dict[str, float] = {}
    for (a, _b), n in transitions.items():
        totals[a] = totals.get(a, 0.0) + n
    transient = [s for s in totals if s not in (CONVERSION, NULL)
                 and (removed is None or s == START or removed not in _channels_of(s))]
    if START not in transient:
        return 0.0
    index = {s: i for i, s in enumerate(transient)}
    q = np.zeros((len(transient), len(transient)))
    r = np.zeros(len(transient))
    for (a, b), n in transitions.items():
        i = index.get(a)
        if i is None or n <= 0:
            continue
        p = n / totals[a]
        if b == CONVERSION:
            r[i] += p
        elif b in index:
            q[i, index[b]] += p
        # else: null, a removed state, or a state never left (no outgoing counts): absorbed, no
        # conversion
    x = np.linalg.solve(np.eye(len(transient)) - q, r)
    return float(min(1.0, max(0.0, x[index[START]])))


def markov_shares(transitions: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """Channel -> share of credit (sums to 1), from the removal effects."""
    channels = sorted({c for (a, b) in transitions for s in (a, b)
                       if s not in (START, CONVERSION, NULL) for c in _channels_of(s)})
    base = conversion_probability(transitions)
    if base <= 0 or not channels:
        return {}
    effects = {c: max(0.0, 1.0 - conversion_probability(transitions, c) / base) for c in channels}
    total = sum(effects.values())
    if total <= 0:
        return {c: 1.0 / len(channels) for c in channels}
    return {c: e / total for c, e in effects.items()}


def shapley_credit(sets: Iterable[tuple[Sequence[str], float, float, float]]
                   ) -> dict[str, tuple[float, float]]:
    """`sets`: (channel set, paths, conversions, revenue) aggregates -> channel -> (conversions,
    revenue) credited. Sets larger than MAX_SHAPLEY_CHANNELS raise ValueError."""
    stats: dict[frozenset, list[float]] = {}
    for channels, paths, conversions, revenue in sets:
        key = frozenset(channels)
        acc = stats.setdefault(key, [0.0, 0.0, 0.0])
        acc[0] += paths
        acc[1] += conversions
        acc[2] += revenue
    rate = {k: (v[1] / v[0] if v[0] > 0 else 0.0) for k, v in stats.items()}
    credit: dict[str, list[float]] = {}
    for members, (paths, conversions, revenue) in stats.items():
        if conversions <= 0 or not members:
            continue
        if len(members) > MAX_SHAPLEY_CHANNELS:
            raise ValueError(f"a path has {len(members)} distinct channels; exact Shapley is "
                             f"limited to {MAX_SHAPLEY_CHANNELS}")
        values = _shapley_values(sorted(members), rate)
        total = sum(v for v in values.values() if v > 0)
        for channel, value in values.items():
            share = (max(0.0, value) / total) if total > 0 else 1.0 / len(members)
            acc = credit.setdefault(channel, [0.0, 0.0])
            acc[0] += conversions * share
            acc[1] += revenue * share
    return {c: (v[0], v[1]) for c, v in credit.items()}


def _shapley_values(players: list[str], rate: Mapping[frozenset, float]) -> dict[str, float]:
    """Exact Shapley values of `players` for the worth v(S) = rate[S] (0 when unseen)."""
    n = len(players)
    weights = [factorial(k) * factorial(n - k - 1) / factorial(n) for k in range(n)]
    values = {p: 0.0 for p in players}
    for k in range(n):
        for coalition in combinations(players, k):
            base = frozenset(coalition)
            worth = rate.get(base, 0.0) if base else 0.0
            for p in players:
                if p not in base:
                    values[p] += weights[k] * (rate.get(base | {p}, 0.0) - worth)
    return values
