"""RFM cut points from the data: the quintiles of the live customers (`parcours traits rfm`).

A pack's `traits.rfm` gives four ascending cut points per axis (`streams.traits.model.Rfm`). This
module computes them from what the customers did, so each score splits them into fifths:

- recency: the 20/40/60/80% quantiles of each customer's time since the last purchase, measured
  from the newest `as_of` in the table, rounded to whole days (at least 1d). The cut points are
  ascending durations; a recent buyer (under the first cut) scores 5, one at or past the last 1.
- frequency: the same quantiles of the number of purchases, as whole numbers (a purchase count
  at or above 1.4 is one at or above 2, so a cut is the quantile rounded up).
- monetary: the same quantiles of the revenue, rounded to cents.

Discrete data ties (most customers bought once: four quantiles of 1): each cut is then nudged up
to the previous one plus the axis' smallest step (1 day, 1 purchase, 0.01), since the pack needs
them strictly ascending. The quantiles are the linear interpolation between order statistics
(numpy's default, ClickHouse's `quantilesExactInclusive`): `quantiles` computes them on plain
numbers, `from_clickhouse` has ClickHouse compute them over `profile_traits FINAL`.

Plain functions and one query over a client passed in: no ClickHouse import here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

from streams.traits.model import DAY_MS, Rfm

__all__ = ["MIN_CUSTOMERS", "QUANTILES", "Suggestion", "frequency_cuts", "from_clickhouse",
           "from_values", "monetary_cuts", "quantiles", "recency_cuts", "strictly_ascending"]

QUANTILES = (0.2, 0.4, 0.6, 0.8)
MIN_CUSTOMERS = 5  # fewer cannot make five groups


def quantiles(values: Iterable[float], qs: Sequence[float] = QUANTILES) -> tuple[float, ...]:
    """The `qs` quantiles of `values`, interpolated linearly between the sorted values (position
    q * (n - 1)). Raises ValueError for no values."""
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("no values to take quantiles of")
    out = []
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q!r} is not between 0 and 1")
        pos = q * (len(data) - 1)
        low = math.floor(pos)
        high = min(low + 1, len(data) - 1)
        out.append(data[low] + (data[high] - data[low]) * (pos - low))
    return tuple(out)


def strictly_ascending(values: Sequence[float], step: float, digits: int | None = None) -> tuple:
    """`values` with each one raised, where needed, to the one before plus `step`; `digits`
    rounds each result (so 0.01 steps do not drift: 100.01, not 100.01000000000001)."""
    out: list = []
    for value in values:
        if out and value < out[-1] + step:
            value = out[-1] + step
        out.append(round(value, digits) if digits is not None else value)
    return tuple(out)


def recency_cuts(quantiles_ms: Sequence[float]) -> tuple[int, ...]:
    """Durations since the last purchase (ms) -> cut points in whole days (ms), at least 1d,
    strictly ascending."""
    days = [max(1, round(q / DAY_MS)) for q in quantiles_ms]
    return tuple(d * DAY_MS for d in strictly_ascending(days, 1))


def frequency_cuts(quantiles_: Sequence[float]) -> tuple[int, ...]:
    """Purchase counts -> whole-number cut points (rounded up: a count is whole), at least 1,
    strictly ascending."""
    return strictly_ascending([max(1, math.ceil(round(q, 6))) for q in quantiles_], 1)


def monetary_cuts(quantiles_: Sequence[float]) -> tuple[float, ...]:
    """Revenues -> cut points in cents, strictly ascending."""
    return strictly_ascending([round(float(q), 2) for q in quantiles_], 0.01, digits=2)


@dataclass(frozen=True)
class Suggestion:
    """Cut points computed from `customers` live customers as of `as_of` (epoch ms)."""

    customers: int
    as_of: int
    rfm: Rfm

    @property
    def day(self) -> str:
        return datetime.fromtimestamp(self.as_of / 1000, timezone.utc).date().isoformat()

    def as_json(self) -> dict:
        return {"recency": [f"{ms // DAY_MS}d" for ms in self.rfm.recency_ms],
                "recency_ms": list(self.rfm.recency_ms),
                "frequency": list(self.rfm.frequency),
                "monetary": list(self.rfm.monetary),
                "source": self.rfm.source, "customers": self.customers,
                "as_of": datetime.fromtimestamp(self.as_of / 1000, timezone.utc).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z")}

    def yaml(self, indent: int = 2) -> str:
        """The `rfm:` block, indented to paste under `traits:` in a rule pack."""
        pad = " " * indent
        return "\n".join([
            f"{pad}rfm:",
            f"{pad}  recency: [{', '.join(f'{ms // DAY_MS}d' for ms in self.rfm.recency_ms)}]",
            f"{pad}  frequency: [{', '.join(str(int(v)) for v in self.rfm.frequency)}]",
            f"{pad}  monetary: [{', '.join(_money(v) for v in self.rfm.monetary)}]",
            f'{pad}  source: "{self.rfm.source}"',
        ]) + "\n"


def _money(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


def suggestion(customers: int, as_of: int, recency_q: Sequence[float],
               frequency_q: Sequence[float], monetary_q: Sequence[float]) -> Suggestion:
    """The cut points of the three axes' quantiles (see the module doc)."""
    day = datetime.fromtimestamp(as_of / 1000, timezone.utc).date().isoformat()
    return Suggestion(customers, as_of, Rfm(
        recency_cuts(recency_q), frequency_cuts(frequency_q), monetary_cuts(monetary_q),
        source=f"ClickHouse quintiles of {customers} customers, {day}"))


def from_values(as_of: int, customers: Iterable[tuple[int, int, float]]) -> Suggestion:
    """From plain (last purchase at (ms), purchases, revenue) per customer, recency measured
    from `as_of`. Raises ValueError with fewer than MIN_CUSTOMERS."""
    rows = list(customers)
    if len(rows) < MIN_CUSTOMERS:
        raise ValueError(f"{len(rows)} customers: at least {MIN_CUSTOMERS} are needed")
    return suggestion(len(rows), as_of, quantiles(as_of - lp for lp, _n, _r in rows),
                      quantiles(n for _lp, n, _r in rows), quantiles(r for _lp, _n, r in rows))


_QS = ", ".join(str(q) for q in QUANTILES)
_LIVE = "profile_traits FINAL WHERE is_deleted = 0"


def from_clickhouse(client) -> tuple[int, Suggestion | None]:
    """(customers, suggestion) from `profile_traits` (its live rows); the suggestion is None
    with fewer than MIN_CUSTOMERS customers. `client`: a clickhouse-connect client."""
    (newest,), = client.query(
        f"SELECT max(toUnixTimestamp64Milli(as_of)) FROM {_LIVE}").result_rows
    (n, recency, frequency, monetary), = client.query(
        f"SELECT count(), quantilesExactInclusive({_QS})(toFloat64({{now:Int64}} - "
        f"toUnixTimestamp64Milli(assumeNotNull(last_purchase_at)))), "
        f"quantilesExactInclusive({_QS})(toFloat64(purchases)), "
        f"quantilesExactInclusive({_QS})(revenue) "
        f"FROM {_LIVE} AND purchases > 0 AND last_purchase_at IS NOT NULL",
        parameters={"now": int(newest or 0)}).result_rows
    n = int(n)
    if n < MIN_CUSTOMERS:
        return n, None
    return n, suggestion(n, int(newest), recency, frequency, monetary)
