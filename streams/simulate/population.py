"""The synthetic population: people drawn deterministically from a seed, their journeys merged in
event-time order."""
from __future__ import annotations

import heapq
import random
import zlib
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from streams.simulate.catalogue import (_ACCESSORIES, _APP_UAS, _CARS, _DESKTOP_UAS, _FIRST,
                                        _HOURLY_CUM, _LAST, _MAIL_DOMAINS, _MARKET_CUM, _MARKETS,
                                        _MOBILE_UAS, _STORES, _bisect, _Market)
from streams.simulate.clock import _DAY, _HOUR, _SESSION_BUDGET, UTC, _aware, _IsoClock, _ms
from streams.simulate.journey import _Journey
from streams.simulate.touchpoints import _Device, _Person


def _permute(index: int, salt: int, modulus: int, multiplier: int = 48_271) -> int:
    """A bijection of [0, modulus) (multiplier coprime with modulus): unique ids, random-looking."""
    return (index * multiplier + salt) % modulus


class Population:
    """A deterministic synthetic population of `profiles` people over `days` from `start`.

    `events()` yields every touchpoint in global event-time order (ties broken deterministically),
    all inside `[start, start + days)`. The same arguments give the same events, byte for byte;
    profile `i` gets the same journey whatever the population size (a population of 100 is the
    first 100 people of a population of 1,000 with the same seed and window).

    - conversion_rate: share of people whose journey ends in one purchase (web, app or store).
    - lead_rate: share of people who send a lead form (test drive, quote...); leads also count
      as conversions downstream, on top of purchases.
    - cross_device_rate: share of people who also browse on a desktop; most of them are linked to
      their phone's cookie later by a login (user id) or an e-mail click, some never are.
    - app_rate: share of people with the brand app (device id + account; push consent on
      onboarding, geofence and beacon store visits).
    """

    def __init__(self, profiles: int, seed: int, start: datetime, days: int = 14,
                 conversion_rate: float = 0.08, *, lead_rate: float = 0.05,
                 cross_device_rate: float = 0.35, app_rate: float = 0.3,
                 forget_rate: float = 0.003):
        if not isinstance(profiles, int) or isinstance(profiles, bool) or profiles < 0:
            raise ValueError(f"profiles must be a non-negative int, got {profiles!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ValueError(f"days must be an int >= 1, got {days!r}")
        for name, value in (("conversion_rate", conversion_rate), ("lead_rate", lead_rate),
                            ("cross_device_rate", cross_device_rate), ("app_rate", app_rate),
                            ("forget_rate", forget_rate)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}")
        self.profiles = profiles
        self.seed = seed
        self.start = _aware(start)
        self.days = days
        self.conversion_rate = float(conversion_rate)
        self.lead_rate = float(lead_rate)
        self.cross_device_rate = float(cross_device_rate)
        self.app_rate = float(app_rate)
        self.forget_rate = float(forget_rate)
        self._start_ms = _ms(self.start)
        self._end_ms = self._start_ms + days * _DAY
        salt = zlib.crc32(f"parcours-simulate:{seed}".encode())
        self._salt = salt
        self._tag = f"{salt & 0xFFFF:04x}"
        self._zones = {m.tz_name: ZoneInfo(m.tz_name) for m in _MARKETS}
        self._clocks = {name: _IsoClock(tz) for name, tz in self._zones.items()}
        self._clocks["UTC"] = _IsoClock(UTC)

    def __repr__(self) -> str:
        return (f"Population(profiles={self.profiles}, seed={self.seed}, "
                f"start={self.start.isoformat()!r}, days={self.days}, "
                f"conversion_rate={self.conversion_rate})")

    def __iter__(self) -> Iterator[dict]:
        return self.events()

    @property
    def end(self) -> datetime:
        """The end of the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    def _plans(self) -> list[tuple[int, int, int, int]]:
        """(first event ms, profile index, market index, journey seed), sorted by time.

        A fixed number of draws per profile keeps profile i's plan independent of the size."""
        master = random.Random(f"parcours-population:{self.seed}")
        rnd = master.random
        start, end_limit = self._start_ms, self._end_ms - _SESSION_BUDGET
        midnights = {}
        for m in _MARKETS:
            tz = self._zones[m.tz_name]
            local_day = self.start.astimezone(tz).date()
            midnights[m.tz_name] = _ms(datetime.combine(local_day, time(0), tz))
        span = max(end_limit - start, 1)
        plans = []
        for i in range(self.profiles):
            market_index = _bisect(_MARKET_CUM, rnd() * _MARKET_CUM[-1])
            day = int(rnd() * self.days)
            hour = _bisect(_HOURLY_CUM, rnd() * _HOURLY_CUM[-1])
            within = int(rnd() * _HOUR)
            fallback = rnd()
            journey_seed = master.getrandbits(64)
            t = midnights[_MARKETS[market_index].tz_name] + day * _DAY + hour * _HOUR + within
            if t < start:
                t += _DAY
            if not start <= t <= end_limit:
                t = start + int(fallback * span)
            plans.append((t, i, market_index, journey_seed))
        plans.sort()
        return plans

    def _person(self, index: int, market: _Market, rng: random.Random) -> _Person:
        rnd = rng.random

        def pick(seq: tuple) -> Any:
            return seq[int(rnd() * len(seq))]

        salt = self._salt
        first, last = pick(_FIRST), pick(_LAST)
        sep = pick((".", ".", "_", ""))
        email = f"{first}{sep}{last}{index}@{pick(_MAIL_DOMAINS)}"
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
        has_app = rnd() < self.app_rate
        registered = has_app or rnd() < 0.3
        user = f"u-{1_000_000 + _permute(index, salt, 9_000_000)}" if registered else None
        mobile = _Device("mobile", f"c-{rng.getrandbits(64):016x}", pick(_MOBILE_UAS))
        desktop = None
        link = None
        if rnd() < self.cross_device_rate:
            desktop = _Device("desktop", f"c-{rng.getrandbits(64):016x}", pick(_DESKTOP_UAS))
        subscriber = rnd() < 0.45
        if desktop is not None:
            r = rnd()
            if registered and r < 0.8:
                link = "login"
            elif subscriber and r < 0.8:
                link = "email"
        converts = rnd() < self.conversion_rate
        car = rnd() < 0.3
        product = pick(_CARS) if car else pick(_ACCESSORIES)
        r = rnd()
        if car:
            purchase_kind = "store"
        elif has_app and r < 0.25:
            purchase_kind = "app"
        elif r < 0.88:
            purchase_kind = "web"
        else:
            purchase_kind = "store"
        store = _STORES[pick(market.stores)]
        loyalty = f"L-{10_000_000 + _permute(index, salt, 90_000_000, 7_919)}"
        return _Person(
            index=index, market=market, tz=self._zones[market.tz_name], store=store,
            mobile=mobile, desktop=desktop,
            app_device=f"d-{rng.getrandbits(64):016x}" if has_app else None,
            app_ua=pick(_APP_UAS), user=user, email=email, email_typed=email_typed,
            phone=phone, phone_typed=phone_typed, loyalty=loyalty, has_loyalty=rnd() < 0.2,
            subscriber=subscriber,
            sms_opt_in=rnd() < 0.15, product=product, converts=converts,
            purchase_kind=purchase_kind, leads=rnd() < self.lead_rate, link=link,
            forgets=rnd() < self.forget_rate)

    def _journey(self, index: int, market_index: int, first_ms: int,
                 journey_seed: int) -> list[tuple[int, dict]]:
        rng = random.Random(journey_seed)
        person = self._person(index, _MARKETS[market_index], rng)
        return _Journey(self, person, rng).build(first_ms)

    def events(self) -> Iterator[dict]:
        """All touchpoints, in non-decreasing event time (a lazy k-way merge of the journeys:
        a journey is generated when the merge reaches its first event)."""
        heap: list[tuple[int, int, dict]] = []
        push, pop = heapq.heappush, heapq.heappop
        seq = 0
        for first_ms, index, market_index, journey_seed in self._plans():
            while heap and heap[0][0] <= first_ms:
                yield pop(heap)[2]
            for t, event in self._journey(index, market_index, first_ms, journey_seed):
                push(heap, (t, seq, event))
                seq += 1
        while heap:
            yield pop(heap)[2]

    def journeys(self) -> Iterator[tuple[int, list[dict]]]:
        """(profile index, that person's touchpoints in time order), in profile order: the ground
        truth of who is who, for checking identity stitching and attribution."""
        plans = sorted(self._plans(), key=lambda plan: plan[1])
        for first_ms, index, market_index, journey_seed in plans:
            pairs = self._journey(index, market_index, first_ms, journey_seed)
            pairs.sort(key=lambda pair: pair[0])
            yield index, [event for _, event in pairs]
