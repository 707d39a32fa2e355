"""Multi-touch attribution: which touchpoints count, the path per profile, credit per model.

Pure functions over plain data. A path is a list of touches ``[event_id, time_ms, channel, campaign,
publisher]`` sorted by time; a conversion credits the touches at or before it within the lookback
window, then starts a new path. Position-based models are computed here per conversion; the
data-driven models (markov, shapley) need counts over all paths and live with the aggregates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from streams.channels import has_campaign_params

Touch = list  # [event_id, time_ms, channel, campaign, publisher]

DEFAULT_TOUCH_TYPES = frozenset({
    "impression", "click", "email_open", "email_click", "push_open", "sms_click", "store_visit",
})
DEFAULT_CONVERSION_TYPES = frozenset({"purchase", "lead"})
DAY_MS = 86_400_000


@dataclass(frozen=True)
class AttributionConfig:
    touch_types: frozenset = DEFAULT_TOUCH_TYPES
    conversion_types: frozenset = DEFAULT_CONVERSION_TYPES
    lookback_days: float = 30.0
    max_touches: int = 50  # oldest touches beyond this are dropped from a path
    models: tuple = ("last_touch", "first_touch", "last_non_direct", "linear", "time_decay",
                     "position_based")
    half_life_days: float = 7.0  # time_decay
    position_ends: float = 0.4  # position_based: share of the first and of the last touch
    seen_conversions: int = 20  # per profile, to ignore a replayed conversion

    def __post_init__(self):
        unknown = [m for m in self.models if m not in PATH_MODELS]
        if unknown:
            raise ValueError(f"unknown attribution model(s) {unknown}; known: {sorted(PATH_MODELS)}")


def is_touch(tp: dict, config: AttributionConfig) -> bool:
    """A touch is a marketing contact: the configured types, plus a page_view with campaign params."""
    kind = tp["type"]
    if kind in config.touch_types:
        return True
    if kind == "page_view":
        return has_campaign_params((tp.get("context") or {}).get("url"))
    return False


def as_touch(tp: dict) -> Touch:
    return [tp["event_id"], tp["event_time"], tp["channel"], tp.get("campaign"), tp.get("publisher")]


def add_touch(touches: list, touch: Touch, max_touches: int) -> list:
    """Return the path with `touch` inserted in time order (idempotent on event_id)."""
    event_id, at = touch[0], touch[1]
    if any(t[0] == event_id for t in touches):
        return touches
    path = touches + [touch]
    if len(path) > 1 and path[-2][1] > at:  # late event: keep the path sorted by time, then id
        path.sort(key=lambda t: (t[1], t[0]))
    if len(path) > max_touches:
        path = path[-max_touches:]
    return path


def merge_paths(a: list, b: list, max_touches: int) -> list:
    seen = {t[0] for t in a}
    path = sorted(a + [t for t in b if t[0] not in seen], key=lambda t: (t[1], t[0]))
    return path[-max_touches:]


# --- position models: weights over a path of n touches (each returns a list summing to 1) --------

def _last(path: Sequence[Touch], conv_time: int, cfg: AttributionConfig) -> list[float]:
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


def credit_rows(conversion: dict, path: Sequence[Touch], config: AttributionConfig) -> list[dict]:
    """Credit rows for one conversion over the touches that preceded it, one set per model.

    With no touch in the window the conversion is credited in full to the channel ``direct``
    (touchpoint_id empty), so credit sums to 1 per conversion and model in every case.
    """
    conv_time = conversion["event_time"]
    revenue = _revenue(conversion)
    base = {
        "conversion_id": conversion["event_id"],
        "conversion_time": conv_time,
        "profile_id": conversion.get("profile_id") or "",
    }
    if not path:
        path = [["", conv_time, "direct", None, None]]
    rows = []
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


def _revenue(tp: dict) -> float:
    value = (tp.get("properties") or {}).get("revenue")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


@dataclass
class PathBook:
    """Per-profile path state over a key-value state (BatchState): profile_id -> record.

    record = {"touches": [Touch...], "conversions": [recent conversion ids]}
    """

    state: object  # BatchState
    config: AttributionConfig = field(default_factory=AttributionConfig)

    def on_event(self, tp: dict, credits: list) -> None:
        profile_id = tp.get("profile_id")
        if not profile_id:
            return  # anonymous: nothing to join it with
        kind = tp["type"]
        cfg = self.config
        if kind in cfg.conversion_types:
            self._convert(profile_id, tp, credits)
        elif is_touch(tp, cfg):
            record = self.state.get(profile_id)
            touches = record["touches"] if record else []
            path = add_touch(touches, as_touch(tp), cfg.max_touches)
            if path is not touches:
                self.state.set(profile_id, {"touches": path,
                                            "conversions": record["conversions"] if record else []})

    def _convert(self, profile_id: str, tp: dict, credits: list) -> None:
        cfg = self.config
        record = self.state.get(profile_id) or {"touches": [], "conversions": []}
        if tp["event_id"] in record["conversions"]:
            return  # replayed conversion: already credited
        at = tp["event_time"]
        since = at - int(cfg.lookback_days * DAY_MS)
        credited = [t for t in record["touches"] if since <= t[1] <= at]
        credits.extend(credit_rows(tp, credited, cfg))
        later = [t for t in record["touches"] if t[1] > at]
        seen = (record["conversions"] + [tp["event_id"]])[-cfg.seen_conversions:]
        self.state.set(profile_id, {"touches": later, "conversions": seen})

    def on_merge(self, survivor: str, absorbed: Iterable[str]) -> None:
        """Move the paths of absorbed profiles onto the survivor."""
        record = self.state.get(survivor)
        touches = record["touches"] if record else []
        conversions = record["conversions"] if record else []
        moved = False
        for old in absorbed:
            other = self.state.get(old)
            if other is None:
                continue
            touches = merge_paths(touches, other["touches"], self.config.max_touches)
            conversions = (conversions + other["conversions"])[-self.config.seen_conversions:]
            self.state.delete(old)
            moved = True
        if moved:
            self.state.set(survivor, {"touches": touches, "conversions": conversions})

    def on_forget(self, profile_id: str) -> None:
        self.state.delete(profile_id)

    def path(self, profile_id: str) -> list:
        record = self.state.get(profile_id)
        return record["touches"] if record else []
