"""The identity graph's limits: which of a profile's identifiers are limited, whether a new link or
a merge would break a limit, and the refusal's reason (semantics: the `streams.identity.graph`
docstring).

`limits` maps every limited identifier type to (maximum per profile, unique); an unlimited config
gives an empty mapping and none of this runs.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from streams.identity.config import IdentityConfig

Limits = Mapping[str, tuple[int, bool]]

_EMPTY_SET: frozenset = frozenset()


def limits_of(config: IdentityConfig) -> dict[str, tuple[int, bool]]:
    """type -> (limit, unique) for every limited type of `config`."""
    return {t: (config.limit(t), t in config.unique_types)
            for t in (*config.max_per_type, *config.unique_types)}


def limited_keys(limits: Limits, rec_ids: Mapping[str, int]) -> dict[str, list[str]]:
    """The record's identifiers of limited types, by type (a scan: records under limits are
    small)."""
    out: dict[str, list[str]] = {}
    for key in rec_ids:
        t = key[:key.find(":")]
        if t in limits:
            bucket = out.get(t)
            if bucket is None:
                out[t] = [key]
            else:
                bucket.append(key)
    return out


def link_conflict(limits: Limits, t: str, key: str, held: dict[str, set[str]]) -> str | None:
    """Why linking identifier `key` (of type `t`) to a profile holding `held` breaks a limit."""
    limit = limits.get(t)
    if limit is None:
        return None
    have = held.get(t)
    if not have or key in have or len(have) < limit[0]:
        return None
    return reason(t, limit, have, (key,))


def merge_conflict(limits: Limits, rank: Callable[[str], tuple[int, str]],
                   incoming: dict[str, list[str]], held: dict[str, set[str]]) -> str | None:
    """Why merging a profile with limited identifiers `incoming` into one holding `held` breaks a
    limit; the conflict is reported on the highest-priority type."""
    worst = None
    for t, keys in incoming.items():
        limit = limits[t]
        have = held.get(t, _EMPTY_SET)
        if len(have) + len(keys) <= limit[0]:
            continue  # fits even without overlap (the usual case)
        if len(have) + sum(1 for k in keys if k not in have) > limit[0]:
            if worst is None or rank(t) < rank(worst):
                worst = t
    if worst is None:
        return None
    return reason(worst, limits[worst], held.get(worst, _EMPTY_SET), incoming[worst])


def reason(t: str, limit: tuple[int, bool], have: set[str], incoming: Iterable[str]) -> str:
    n, unique = limit
    if not unique:
        return f"max {n} {t} per profile"
    cut = len(t) + 1
    extra = sorted(k[cut:] for k in incoming if k not in have)
    if have and extra:
        return f"unique type {t!r} already holds {min(have)[cut:]}, not {extra[0]}"
    return f"unique type {t!r} would hold {len(have) + len(extra)} values"
