"""What attribution counts: touch and conversion types, lookback windows, models and their knobs."""
from __future__ import annotations

from dataclasses import dataclass

from streams.attribution.models import DAY_MS, PATH_MODELS

DEFAULT_TOUCH_TYPES = frozenset({
    "impression", "click", "email_open", "email_click", "push_open", "sms_click", "store_visit",
})
DEFAULT_CONVERSION_TYPES = frozenset({"purchase", "lead"})


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
    lookback_days_by_type: tuple = ()  # ((conversion type, days), ...) overriding lookback_days
    markov_orders: tuple = (1, 2)  # transition counts written per closed path, per order

    def lookback_ms(self, conversion_type: str) -> int:
        days = dict(self.lookback_days_by_type).get(conversion_type, self.lookback_days)
        return int(days * DAY_MS)

    def __post_init__(self):
        unknown = [m for m in self.models if m not in PATH_MODELS]
        if unknown:
            raise ValueError(f"unknown attribution model(s) {unknown}; "
                             f"known: {sorted(PATH_MODELS)}")
