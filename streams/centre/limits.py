"""Rate limits of the preference centre: a token bucket per key, in memory, bounded.

The server keeps two limiters: per client address and per link (the key is a hash of the
token's signature, never the token or the identifier). `allow(key, now)` takes one request from
the key's bucket: `burst` requests at once, refilled at `per_minute`. At most `max_keys` buckets
are kept; the least recently used go first, so a flood of new addresses costs bounded memory
(an evicted key starts again with a full bucket, which only errs on the side of the person).
"""
from __future__ import annotations

from collections import OrderedDict

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, max_keys: int = 100_000) -> None:
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, t)

    def allow(self, key: str, now: float) -> bool:
        tokens, then = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
