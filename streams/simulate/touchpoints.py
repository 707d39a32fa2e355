"""The builder of one person's raw touchpoints (`Touchpoints`): the journey's state (the person,
their random draws, the events so far) and the construction of events (event id, event time in
the producer's form, ids and context of the web, the app and the store), shared by `journey` and
the sessions (`web_sessions`, `browsing`, `app_and_store`)."""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from streams.simulate.person import Device, Person


class Touchpoints:
    """Builds one person's touchpoints as (epoch ms, raw event) pairs, in `out`.

    What it needs of the population is given: `prefix` of the event ids (`sim{seed}-{index}`),
    `tag` (the population's, in order and lead ids), `clock` and `utc_clock` (epoch ms -> ISO
    8601 in the person's zone and in UTC) and `end_limit` (no session starts after it)."""

    __slots__ = ("rng", "p", "out", "k", "prefix", "clock", "utc_clock", "tz_name", "end_limit",
                 "tag")

    def __init__(self, person: Person, rng: random.Random, *, prefix: str, tag: str,
                 clock: Callable[[int], str], utc_clock: Callable[[int], str], end_limit: int):
        self.rng = rng
        self.p = person
        self.out: list[tuple[int, dict]] = []
        self.k = 0
        self.prefix = prefix
        self.tag = tag
        self.clock = clock
        self.utc_clock = utc_clock
        self.tz_name = person.market.tz_name
        self.end_limit = end_limit

    # -- event construction --------------------------------------------------------------------
    def emit(self, t: int, form: str, etype: str, channel: str | None, ids: dict,
             context: dict, properties: dict, campaign: str | None = None,
             publisher: str | None = None) -> None:
        """form: "ms" (epoch ms int), "local" (ISO with the person's offset), "utc" (ISO +00:00)."""
        self.k += 1
        if form == "ms":
            event_time: Any = t
        elif form == "local":
            event_time = self.clock(t)
        else:
            event_time = self.utc_clock(t)
        event: dict[str, Any] = {"event_id": f"{self.prefix}-{self.k:02d}",
                                 "event_time": event_time, "type": etype}
        if channel is not None:
            event["channel"] = channel
        if campaign is not None:
            event["campaign"] = campaign
        if publisher is not None:
            event["publisher"] = publisher
        event["ids"] = ids
        event["context"] = context
        event["properties"] = properties
        self.out.append((t, event))

    def web_ids(self, dev: Device) -> dict:
        ids = {"cookie": dev.cookie}
        if dev.logged_in and self.p.user is not None:
            ids["user"] = self.p.user
        return ids

    def web_ctx(self, dev: Device, url: str, referrer: str | None = None) -> dict:
        ctx = {"url": url}
        if referrer is not None:
            ctx["referrer"] = referrer
        ctx["tz"] = self.tz_name
        ctx["user_agent"] = dev.ua
        return ctx

    def app_ids(self) -> dict:
        return {"device": self.p.app_device, "user": self.p.user}

    def app_ctx(self) -> dict:
        return {"tz": self.tz_name, "user_agent": self.p.app_ua}

    def store_ctx(self, **extra: Any) -> dict:
        s = self.p.store
        return {"store_id": s.id, "lat": s.lat, "lon": s.lon, "tz": self.tz_name, **extra}

    def pick(self, seq: tuple | list) -> Any:
        """random.choice without its rejection sampling: a float draw, ~5x faster."""
        return seq[int(self.rng.random() * len(seq))]

    def span(self, low: int, high: int) -> int:
        """An int in [low, high)."""
        return low + int(self.rng.random() * (high - low))

    def token(self, bits: int = 64) -> str:
        return f"{self.rng.getrandbits(bits):0{bits // 4}x}"
