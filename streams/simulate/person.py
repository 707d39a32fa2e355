"""A simulated person: their devices, identifiers, reachability and what their journey leads to
(`Device`, `Person`), drawn by `draw_person` at the rates of the population (`Rates`)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from streams.simulate.catalogue import (
    ACCESSORIES,
    APP_UAS,
    CARS,
    DESKTOP_UAS,
    FIRST_NAMES,
    LAST_NAMES,
    MAIL_DOMAINS,
    MOBILE_UAS,
    STORES,
    Market,
    Product,
    Store,
)


@dataclass(slots=True)
class Device:
    kind: str           # mobile | desktop
    cookie: str
    ua: str
    logged_in: bool = False


@dataclass(slots=True)
class Person:
    index: int
    market: Market
    tz: ZoneInfo
    store: Store
    mobile: Device
    desktop: Device | None
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
    product: Product
    converts: bool
    purchase_kind: str      # web | app | store
    leads: bool
    link: str | None        # how the desktop cookie gets linked: login | email | None
    forgets: bool           # ends with a global opt-out
    app_onboarded: bool = False
    push_opt_in: bool = False
    unsubscribed: bool = False


@dataclass(frozen=True, slots=True)
class Rates:
    """The shares of a population (see `Population`): who converts, sends a lead, also browses on
    a desktop, has the app, ends with a global opt-out."""

    conversion: float
    lead: float
    cross_device: float
    app: float
    forget: float


def _permute(index: int, salt: int, modulus: int, multiplier: int = 48_271) -> int:
    """A bijection of [0, modulus) (multiplier coprime with modulus): unique ids, random-looking."""
    return (index * multiplier + salt) % modulus


def draw_person(index: int, market: Market, tz: ZoneInfo, rng: random.Random, salt: int,
                rates: Rates) -> Person:
    """Person `index` of a population, living in `market` (time zone `tz`): `rng` is their
    journey's generator, `salt` the population's (it makes their ids unique in the population)."""
    rnd = rng.random

    def pick(seq: tuple) -> Any:
        return seq[int(rnd() * len(seq))]

    first, last = pick(FIRST_NAMES), pick(LAST_NAMES)
    sep = pick((".", ".", "_", ""))
    email = f"{first}{sep}{last}{index}@{pick(MAIL_DOMAINS)}"
    r = rnd()
    if r < 0.08:
        email_typed = email.title()                   # Camille.Dubois12@Example.Com
    elif r < 0.14:
        email_typed = f" {email} "
    elif r < 0.18:
        email_typed = email.upper()
    else:
        email_typed = email
    digits = market.mobile_digits
    number = f"{_permute(index, salt, 10 ** digits):0{digits}d}"
    national = market.mobile_prefix + number
    phone = market.country_code + national
    if market.country_code == "+33" and rnd() < 0.5:
        pairs = " ".join(national[i:i + 2] for i in range(1, 9, 2))
        phone_typed = f"+33 {national[0]} {pairs}"
    else:
        phone_typed = phone
    has_app = rnd() < rates.app
    registered = has_app or rnd() < 0.3
    user = f"u-{1_000_000 + _permute(index, salt, 9_000_000)}" if registered else None
    mobile = Device("mobile", f"c-{rng.getrandbits(64):016x}", pick(MOBILE_UAS))
    desktop = None
    link = None
    if rnd() < rates.cross_device:
        desktop = Device("desktop", f"c-{rng.getrandbits(64):016x}", pick(DESKTOP_UAS))
    subscriber = rnd() < 0.45
    if desktop is not None:
        r = rnd()
        if registered and r < 0.8:
            link = "login"
        elif subscriber and r < 0.8:
            link = "email"
    converts = rnd() < rates.conversion
    car = rnd() < 0.3
    product = pick(CARS) if car else pick(ACCESSORIES)
    r = rnd()
    if car:
        purchase_kind = "store"
    elif has_app and r < 0.25:
        purchase_kind = "app"
    elif r < 0.88:
        purchase_kind = "web"
    else:
        purchase_kind = "store"
    store = STORES[pick(market.stores)]
    loyalty = f"L-{10_000_000 + _permute(index, salt, 90_000_000, 7_919)}"
    return Person(
        index=index, market=market, tz=tz, store=store,
        mobile=mobile, desktop=desktop,
        app_device=f"d-{rng.getrandbits(64):016x}" if has_app else None,
        app_ua=pick(APP_UAS), user=user, email=email, email_typed=email_typed,
        phone=phone, phone_typed=phone_typed, loyalty=loyalty, has_loyalty=rnd() < 0.2,
        subscriber=subscriber,
        sms_opt_in=rnd() < 0.15, product=product, converts=converts,
        purchase_kind=purchase_kind, leads=rnd() < rates.lead, link=link,
        forgets=rnd() < rates.forget)
