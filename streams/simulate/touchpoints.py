"""A simulated person (devices, identifiers, reachability) and the builder of their raw touchpoints."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from streams.simulate.catalogue import _Market, _Product, _Store
from streams.simulate.clock import _SESSION_BUDGET

if TYPE_CHECKING:
    from streams.simulate.population import Population


@dataclass(slots=True)
class _Device:
    kind: str           # mobile | desktop
    cookie: str
    ua: str
    logged_in: bool = False


@dataclass(slots=True)
class _Person:
    index: int
    market: _Market
    tz: ZoneInfo
    store: _Store
    mobile: _Device
    desktop: _Device | None
    app_device: str | None
    app_ua: str
    user: str | None
    email: str              # canonical, as the e-mail service stores it
    email_typed: str        # as the person types it in forms and at the till
    phone: str              # E.164, compact
    phone_typed: str
    loyalty: str            # the card number, once the person has a card
    has_loyalty: bool
    subscriber: bool        # receives the newsletter (consent given before the window)
    sms_opt_in: bool
    product: _Product
    converts: bool
    purchase_kind: str      # web | app | store
    leads: bool
    link: str | None        # how the desktop cookie gets linked: login | email | None
    forgets: bool           # ends with a global opt-out
    app_onboarded: bool = False
    push_opt_in: bool = False
    unsubscribed: bool = False


class _Touchpoints:
    """Builds one person's touchpoints as (epoch ms, raw event) pairs: the state and the event
    construction shared by the sessions (`web_sessions`, `app_and_store`) and the journey
    (`journey._Journey`, the class that is instantiated)."""

    __slots__ = ("rng", "p", "out", "k", "prefix", "clock", "utc_clock", "tz_name", "end_limit",
                 "tag")

    def __init__(self, population: "Population", person: _Person, rng: random.Random):
        self.rng = rng
        self.p = person
        self.out: list[tuple[int, dict]] = []
        self.k = 0
        self.prefix = f"sim{population.seed}-{person.index}"
        self.tag = population._tag
        self.clock = population._clocks[person.market.tz_name]
        self.utc_clock = population._clocks["UTC"]
        self.tz_name = person.market.tz_name
        self.end_limit = population._end_ms - _SESSION_BUDGET

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

    def web_ids(self, dev: _Device) -> dict:
        ids = {"cookie": dev.cookie}
        if dev.logged_in and self.p.user is not None:
            ids["user"] = self.p.user
        return ids

    def web_ctx(self, dev: _Device, url: str, referrer: str | None = None) -> dict:
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
