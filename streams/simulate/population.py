"""The synthetic population (`Population`): when each person's journey starts (the plans, drawn
from the seed), the person (`person.draw_person`) and their journey (`journey.build_journey`), and
the lazy merge of the journeys in event-time order."""
from __future__ import annotations

import heapq
import random
import zlib
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from streams.simulate.catalogue import MARKET_CUM, MARKETS, bucket
from streams.simulate.channels import HOURLY_CUM
from streams.simulate.clock import DAY, HOUR, SESSION_BUDGET, UTC, IsoClock, as_aware, epoch_ms
from streams.simulate.journey import build_journey
from streams.simulate.person import Rates, draw_person
from streams.simulate.touchpoints import Touchpoints


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
        self.start = as_aware(start)
        self.days = days
        self.conversion_rate = float(conversion_rate)
        self.lead_rate = float(lead_rate)
        self.cross_device_rate = float(cross_device_rate)
        self.app_rate = float(app_rate)
        self.forget_rate = float(forget_rate)
        self._start_ms = epoch_ms(self.start)
        self._end_ms = self._start_ms + days * DAY
        salt = zlib.crc32(f"parcours-simulate:{seed}".encode())
        self._salt = salt
        self._tag = f"{salt & 0xFFFF:04x}"
        self._zones = {m.tz_name: ZoneInfo(m.tz_name) for m in MARKETS}
        self._clocks = {name: IsoClock(tz) for name, tz in self._zones.items()}
        self._clocks["UTC"] = IsoClock(UTC)

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
        start, end_limit = self._start_ms, self._end_ms - SESSION_BUDGET
        midnights = {}
        for m in MARKETS:
            tz = self._zones[m.tz_name]
            local_day = self.start.astimezone(tz).date()
            midnights[m.tz_name] = epoch_ms(datetime.combine(local_day, time(0), tz))
        span = max(end_limit - start, 1)
        plans = []
        for i in range(self.profiles):
            market_index = bucket(MARKET_CUM, rnd() * MARKET_CUM[-1])
            day = int(rnd() * self.days)
            hour = bucket(HOURLY_CUM, rnd() * HOURLY_CUM[-1])
            within = int(rnd() * HOUR)
            fallback = rnd()
            journey_seed = master.getrandbits(64)
            t = midnights[MARKETS[market_index].tz_name] + day * DAY + hour * HOUR + within
            if t < start:
                t += DAY
            if not start <= t <= end_limit:
                t = start + int(fallback * span)
            plans.append((t, i, market_index, journey_seed))
        plans.sort()
        return plans

    @property
    def rates(self) -> Rates:
        """The population's shares, as its people are drawn with."""
        return Rates(self.conversion_rate, self.lead_rate, self.cross_device_rate, self.app_rate,
                     self.forget_rate)

    def _journey(self, index: int, market_index: int, first_ms: int,
                 journey_seed: int) -> list[tuple[int, dict]]:
        rng = random.Random(journey_seed)
        market = MARKETS[market_index]
        person = draw_person(index, market, self._zones[market.tz_name], rng, self._salt,
                             self.rates)
        touchpoints = Touchpoints(person, rng, prefix=f"sim{self.seed}-{index}", tag=self._tag,
                                  clock=self._clocks[market.tz_name],
                                  utc_clock=self._clocks["UTC"],
                                  end_limit=self._end_ms - SESSION_BUDGET)
        return build_journey(touchpoints, first_ms)

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
