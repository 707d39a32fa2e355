"""Attribution models: how one conversion's credit is shared over the touches that preceded it.

Position models weigh a path of n touches (each returns weights summing to 1); `credit_rows` turns
them into one credit row per touch and model. The data-driven models (markov, shapley) are computed
from counts over all paths (streams/attribution/datadriven.py).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Sequence, TypedDict

if TYPE_CHECKING:
    from streams.attribution.config import AttributionConfig

Touch = list  # [event_id, time_ms, channel, campaign, publisher]
DAY_MS = 86_400_000


def _last(path: Sequence[Touch], conv_time: int, cfg: "AttributionConfig") -> list[float]:
    return [0.0] * (len(path) - 1) + [1.0]


def _first(path, conv_time, cfg) -> list[float]:
    return [1.0] + [0.0] * (len(path) - 1)


def _last_non_direct(path, conv_time, cfg) -> list[float]:
    for i in range(len(path) - 1, -1, -1):
        if path[i][2] != "direct":
            return [1.0 if j == i else 0.0 for j in range(len(path))]
    return _last(path, conv_time, cfg)


def _linear(path, conv_time, cfg) -> list[float]:
    return [1.0 / len(path)] * len(path)


def _time_decay(path, conv_time, cfg) -> list[float]:
    half_life = cfg.half_life_days * DAY_MS
    raw = [math.pow(0.5, (conv_time - t[1]) / half_life) for t in path]
    total = sum(raw)
    return [w / total for w in raw]


def _position_based(path, conv_time, cfg) -> list[float]:
    n = len(path)
    if n == 1:
        return [1.0]
    if n == 2:
        return [0.5, 0.5]
    ends = cfg.position_ends
    middle = (1.0 - 2 * ends) / (n - 2)
    return [ends] + [middle] * (n - 2) + [ends]


PATH_MODELS: dict[str, Callable] = {
    "last_touch": _last,
    "first_touch": _first,
    "last_non_direct": _last_non_direct,
    "linear": _linear,
    "time_decay": _time_decay,
    "position_based": _position_based,
}
ALL_MODELS = tuple(PATH_MODELS) + ("markov", "shapley")


class CreditRow(TypedDict):
    """One touch's share of one conversion under one model (`attribution.credit`; the ClickHouse
    table adds computed_at)."""

    conversion_id: str  # the conversion's event_id
    conversion_time: int  # epoch ms
    profile_id: str
    model: str  # one of ALL_MODELS
    touchpoint_id: str  # the touch's event_id; "" when no touch preceded (channel "direct")
    touchpoint_time: int
    channel: str
    campaign: str | None
    publisher: str | None
    credit: float  # the touch's weight: a conversion's credits sum to 1 per model
    revenue_credit: float  # credit * the conversion's revenue


def credit_rows(conversion: dict, path: Sequence[Touch],
                config: "AttributionConfig") -> list[CreditRow]:
    """`CreditRow`s for one conversion over the touches that preceded it, one set per model.

    With no touch in the window the conversion is credited in full to the channel ``direct``
    (touchpoint_id empty), so credit sums to 1 per conversion and model in every case.
    """
    conv_time = conversion["event_time"]
    revenue = revenue_of(conversion)
    base = {
        "conversion_id": conversion["event_id"],
        "conversion_time": conv_time,
        "profile_id": conversion.get("profile_id") or "",
    }
    if not path:
        path = [["", conv_time, "direct", None, None]]
    rows: list[CreditRow] = []
    for model in config.models:
        weights = PATH_MODELS[model](path, conv_time, config)
        for touch, weight in zip(path, weights):
            if weight == 0.0:
                continue
            rows.append({
                **base, "model": model, "touchpoint_id": touch[0], "touchpoint_time": touch[1],
                "channel": touch[2], "campaign": touch[3], "publisher": touch[4],
                "credit": weight, "revenue_credit": weight * revenue,
            })
    return rows


def revenue_of(tp: dict) -> float:
    value = (tp.get("properties") or {}).get("revenue")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
