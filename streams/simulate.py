"""Synthetic journeys as RAW touchpoints, in the JSON wire format of DESIGN.md.

Everything here produces what a producer would send to the `touchpoints` topic, before ingest:
raw e-mail addresses and phone numbers (mixed case, spaces, as typed), `event_time` either as an
ISO 8601 string with an offset (web tags, e-mail service, point of sale) or as integer epoch
milliseconds (ad servers, the mobile app SDK), `channel` present or left for ingest to derive from
UTM parameters, click ids and referrers.

- `martin_journey(start)`: the worked example of DESIGN.md, step by step ("martin-01" ... "-11").
- `Population(profiles, seed, start, ...)`: a synthetic population; `events()` yields all its
  touchpoints in global event-time order, deterministically for a seed.
- `malformed_events(n, seed)`: realistic bad records for dead-letter demos and tests.
- `write_jsonl(events, path)` and `produce(events, bootstrap, topic)` to put them somewhere.

Nothing here imports Kafka at module level: `produce` imports aiokafka when it is called.
"""
from __future__ import annotations

import gzip
import heapq
from bisect import bisect_right
import os
import random
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

__all__ = [
    "MALFORMED_KINDS",
    "MARTIN_EMAIL",
    "MARTIN_IDS",
    "MARTIN_STORE",
    "OFFER_CODE",
    "Population",
    "malformed_events",
    "martin_journey",
    "produce",
    "write_jsonl",
]

UTC = timezone.utc
PARIS = ZoneInfo("Europe/Paris")
SITE = "https://brand.example"
CURRENCY = "EUR"

_SECOND = 1_000
_MINUTE = 60_000
_HOUR = 3_600_000
_DAY = 86_400_000
# No session lasts longer than this, so a session started before `end - _SESSION_BUDGET` stays
# inside the simulated window.
_SESSION_BUDGET = 3 * _HOUR


def _ms(dt: datetime) -> int:
    """Aware datetime -> epoch milliseconds (exact, no float rounding)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000


def _aware(start: datetime) -> datetime:
    """Naive datetimes are taken as UTC (the project's time base), aware ones are kept."""
    if not isinstance(start, datetime):
        raise TypeError(f"start must be a datetime, not {type(start).__name__}")
    return start.replace(tzinfo=UTC) if start.tzinfo is None or start.utcoffset() is None else start


def _iso(ms: int, tz: Any, timespec: str = "milliseconds") -> str:
    """Epoch ms -> ISO 8601 with the offset of `tz` at that instant (exact to the millisecond)."""
    seconds, millis = divmod(ms, 1_000)
    return datetime.fromtimestamp(seconds, tz).replace(microsecond=millis * 1_000).isoformat(
        timespec=timespec)


class _IsoClock:
    """Fast epoch-ms -> ISO 8601 with the zone's offset, for one zone.

    The zones of the simulation have whole-hour offsets, so local hours start on UTC hours: the
    text up to the hour, and the offset, are computed once per UTC hour and cached; minutes,
    seconds and milliseconds are plain arithmetic. Zones with other offsets take the slow path.
    """

    __slots__ = ("tz", "_hours")

    def __init__(self, tz: Any):
        self.tz = tz
        self._hours: dict[int, tuple[str, str] | None] = {}

    def __call__(self, ms: int) -> str:
        hour, within = divmod(ms, _HOUR)
        cached = self._hours.get(hour, False)
        if cached is False:
            local = datetime.fromtimestamp(hour * 3_600, self.tz)
            offset = local.utcoffset() or timedelta(0)
            if offset % timedelta(hours=1) or local.minute or local.second:
                cached = None
            else:
                text = local.isoformat(timespec="seconds")
                cached = (text[:13], text[19:])   # "2026-11-20T08", "+01:00"
            self._hours[hour] = cached
        if cached is None:
            return _iso(ms, self.tz)
        minute, rest = divmod(within, _MINUTE)
        second, millis = divmod(rest, _SECOND)
        return f"{cached[0]}:{minute:02d}:{second:02d}.{millis:03d}{cached[1]}"


# ----------------------------------------------------------------------------------------------
# The Martin journey
# ----------------------------------------------------------------------------------------------
MARTIN_EMAIL = "martin@example.com"
# Martin's identifiers, as in the contract example of DESIGN.md. The cookie is his phone browser's:
# he reads his mail in the browser's webmail, so the e-mail open pixel and, later, the banner click
# both carry it. The app (device d-1, account u-42) knows his e-mail from the account sign-in.
MARTIN_IDS = {"cookie": "c-9", "device": "d-1", "user": "u-42", "loyalty": "L-77",
              "email": MARTIN_EMAIL}
MARTIN_STORE = "paris-15"
OFFER_CODE = "XPGJRL"
MARTIN_QUIET_HOURS = "21:00-08:00"

_MARTIN_PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
_MARTIN_APP_UA = "BrandApp/5.3.0 (iPhone; iOS 18.1; Scale/3.00)"
_MARTIN_ARTICLE = "https://autonews.example/essais/suv-compacts-hiver-2026"
_MARTIN_LANDING = ("https://brand.example/suv-x/night-assist?utm_source=autonews&utm_medium=display"
                   "&utm_campaign=winter-suv&utm_content=night-assist-300x250")


def _next_local(after: datetime, hour: int, minute: int, tz: ZoneInfo = PARIS) -> datetime:
    """The first wall-clock `hour:minute` in `tz` strictly after the instant `after`."""
    local = after.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while candidate <= local:
        candidate = (candidate + timedelta(days=1)).replace(tzinfo=tz)
    return candidate


def martin_journey(start: datetime) -> list[dict]:
    """The worked example of DESIGN.md, as the 11 raw touchpoints producers would send.

    `start` is when Martin opens the brand's e-mail on the metro (a naive datetime is UTC). The
    other steps follow on Paris wall-clock time, so the story holds for any start: the banner at the
    next lunch break (12:45), the app install a few minutes after he left the price page, the
    dealership on his way home (18:40, outside his quiet hours 21:00-08:00), the purchase three days
    later at 11:30. Event ids are "martin-01" ... "martin-11" in time order.

    1 email_open (e-mail service, ISO UTC)      2 impression, 3 click (ad server, epoch ms)
    4 page_view, 5 price_view (web tag, ISO Paris)  -- then he leaves: no lead
    6 app_open (app SDK, epoch ms)              7 consent push opt-in + quiet hours (ISO Paris)
    8 geofence_enter, 9 store_visit by beacon, 10 push_open with the offer code (app SDK, epoch ms)
    11 store purchase, 32,900 EUR, loyalty card + e-mail, offer code given (till, ISO Paris)
    """
    t_open = _aware(start)
    t_impression = _next_local(t_open + timedelta(minutes=30), 12, 45)
    t_click = t_impression + timedelta(seconds=42)
    t_page = t_click + timedelta(seconds=3)
    t_price = t_page + timedelta(minutes=2, seconds=27)
    t_app = t_price + timedelta(minutes=6, seconds=10)
    t_consent = t_app + timedelta(seconds=35)
    t_geofence = _next_local(t_consent + timedelta(hours=1), 18, 40)
    t_visit = t_geofence + timedelta(minutes=2, seconds=10)
    t_push = t_visit + timedelta(minutes=1, seconds=55)
    purchase_day = t_push.astimezone(PARIS).date() + timedelta(days=3)
    t_purchase = datetime.combine(purchase_day, time(11, 30), PARIS)

    store = _STORES[MARTIN_STORE]
    phone_web = {"tz": "Europe/Paris", "user_agent": _MARTIN_PHONE_UA}
    app = {"tz": "Europe/Paris", "user_agent": _MARTIN_APP_UA}
    at_store = {"store_id": MARTIN_STORE, "lat": store.lat, "lon": store.lon, "tz": "Europe/Paris"}

    def iso_utc(dt: datetime) -> str:
        return dt.astimezone(UTC).isoformat(timespec="seconds")

    def iso_paris(dt: datetime) -> str:
        return dt.astimezone(PARIS).isoformat(timespec="seconds")

    events = [
        {"event_id": "martin-01", "event_time": iso_utc(t_open), "type": "email_open",
         "channel": "email", "campaign": "winter-suv",
         # As stored in the e-mail service's list: typed at sign-up, mixed case.
         "ids": {"email": "Martin@Example.com", "cookie": "c-9"},
         "context": dict(phone_web),
         "properties": {"message_id": "esp-2026w47-000042",
                        "subject": "Hiver : le SUV X vous emmène plus loin"}},
        {"event_id": "martin-02", "event_time": _ms(t_impression), "type": "impression",
         "channel": "display", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_ARTICLE, **phone_web},
         "properties": {"creative": "suv-x-night-assist-300x250", "placement": "article-inline",
                        "feature": "night-assist"}},
        {"event_id": "martin-03", "event_time": _ms(t_click), "type": "click",
         "channel": "display", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_LANDING, "referrer": _MARTIN_ARTICLE, **phone_web},
         "properties": {"creative": "suv-x-night-assist-300x250", "placement": "article-inline"}},
        {"event_id": "martin-04", "event_time": iso_paris(t_page), "type": "page_view",
         "channel": "web", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": _MARTIN_LANDING, "referrer": "https://autonews.example/", **phone_web},
         "properties": {"product_id": "suv-x", "page": "feature/night-assist"}},
        {"event_id": "martin-05", "event_time": iso_paris(t_price), "type": "price_view",
         "channel": "web", "campaign": "winter-suv", "publisher": "autonews.example",
         "ids": {"cookie": "c-9"},
         "context": {"url": f"{SITE}/suv-x/prix", "referrer": _MARTIN_LANDING, **phone_web},
         "properties": {"product_id": "suv-x", "price": 32900.0, "currency": CURRENCY,
                        "in_stock": True}},
        {"event_id": "martin-06", "event_time": _ms(t_app), "type": "app_open", "channel": "app",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": dict(app),
         "properties": {"first_open": True, "app_version": "5.3.0", "os": "iOS 18.1"}},
        {"event_id": "martin-07", "event_time": iso_paris(t_consent), "type": "consent",
         "channel": "app",
         "ids": {"device": "d-1", "user": "u-42", "email": MARTIN_EMAIL},
         "context": dict(app),
         "properties": {"channel": "push", "opt_in": True, "quiet_hours": MARTIN_QUIET_HOURS,
                        "source": "app-onboarding"}},
        {"event_id": "martin-08", "event_time": _ms(t_geofence), "type": "geofence_enter",
         "channel": "store",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": {**at_store, "lat": 48.8437, "lon": 2.2958, "user_agent": _MARTIN_APP_UA},
         "properties": {"geofence_id": f"gf-{MARTIN_STORE}", "radius_m": 300}},
        {"event_id": "martin-09", "event_time": _ms(t_visit), "type": "store_visit",
         "channel": "store",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": {**at_store, "beacon_id": "b-3", "user_agent": _MARTIN_APP_UA},
         "properties": {"detection": "beacon", "rssi": -71, "dwell_s": 40}},
        {"event_id": "martin-10", "event_time": _ms(t_push), "type": "push_open", "channel": "push",
         "campaign": "near-store-offer",
         "ids": {"device": "d-1", "user": "u-42"},
         "context": dict(app),
         "properties": {"offer_code": OFFER_CODE, "offer_store_id": MARTIN_STORE,
                        "message": f"Aujourd'hui seulement, à deux pas : le SUV X vous attend "
                                   f"chez Brand Paris 15. Code {OFFER_CODE}"}},
        {"event_id": "martin-11", "event_time": iso_paris(t_purchase), "type": "purchase",
         "channel": "store",
         "ids": {"loyalty": "L-77", "email": MARTIN_EMAIL},
         "context": dict(at_store),
         "properties": {"order_id": "o-paris-15-000871", "product_id": "suv-x", "quantity": 1,
                        "price": 32900.0, "revenue": 32900.0, "currency": CURRENCY,
                        "offer_code": OFFER_CODE, "order_id_source": "dms"}},
    ]
    return events


# ----------------------------------------------------------------------------------------------
# Reference data for the population
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Store:
    id: str
    lat: float
    lon: float
    beacons: tuple[str, ...]


_STORES = {s.id: s for s in (
    _Store("paris-15", 48.8412, 2.2910, ("b-1", "b-2", "b-3")),
    _Store("paris-8", 48.8756, 2.3125, ("b-11", "b-12")),
    _Store("lyon-3", 45.7602, 4.8590, ("b-21", "b-22")),
    _Store("lille-1", 50.6366, 3.0635, ("b-31",)),
    _Store("bordeaux-2", 44.8510, -0.5700, ("b-41", "b-42")),
    _Store("marseille-8", 43.2590, 5.3900, ("b-51",)),
    _Store("brussels-1", 50.8466, 4.3528, ("b-61", "b-62")),
    _Store("liege-1", 50.6326, 5.5797, ("b-71",)),
    _Store("luxembourg-1", 49.6116, 6.1319, ("b-81",)),
    _Store("saint-denis-re", -20.8823, 55.4504, ("b-91",)),
    _Store("fort-de-france", 14.6161, -61.0588, ("b-95",)),
)}


@dataclass(frozen=True, slots=True)
class _Market:
    tz_name: str
    weight: int
    country_code: str      # phone
    mobile_prefix: str     # national significant number prefix of mobiles
    mobile_digits: int     # digits after the prefix
    stores: tuple[str, ...]


_MARKETS = (
    _Market("Europe/Paris", 72, "+33", "6", 8,
            ("paris-15", "paris-8", "lyon-3", "lille-1", "bordeaux-2", "marseille-8")),
    _Market("Europe/Brussels", 12, "+32", "47", 7, ("brussels-1", "liege-1")),
    _Market("Europe/Luxembourg", 4, "+352", "691", 6, ("luxembourg-1",)),
    _Market("Indian/Reunion", 6, "+262", "692", 6, ("saint-denis-re",)),
    _Market("America/Martinique", 6, "+596", "696", 6, ("fort-de-france",)),
)
_MARKET_CUM = tuple(sum(m.weight for m in _MARKETS[: i + 1]) for i in range(len(_MARKETS)))


@dataclass(frozen=True, slots=True)
class _Product:
    id: str
    kind: str      # car | accessory | service
    price: float
    path: str


_CARS = (
    _Product("city-e", "car", 24900.0, "city-e"),
    _Product("suv-x", "car", 32900.0, "suv-x"),
    _Product("suv-x-hybrid", "car", 36900.0, "suv-x-hybrid"),
    _Product("break-t", "car", 28900.0, "break-t"),
    _Product("van-pro", "car", 38900.0, "utilitaires/van-pro"),
)
_ACCESSORIES = (
    _Product("roof-box", "accessory", 549.0, "accessoires/coffre-de-toit"),
    _Product("wallbox-7kw", "accessory", 1290.0, "accessoires/borne-de-recharge"),
    _Product("winter-tyres", "accessory", 889.0, "accessoires/pneus-hiver"),
    _Product("dashcam", "accessory", 189.0, "accessoires/dashcam"),
    _Product("floor-mats", "accessory", 79.0, "accessoires/tapis"),
    _Product("bike-rack", "accessory", 429.0, "accessoires/porte-velos"),
    _Product("service-pack-3y", "service", 599.0, "services/entretien-3-ans"),
    _Product("winter-check", "service", 89.0, "services/bilan-hiver"),
    _Product("extended-warranty", "service", 790.0, "services/extension-garantie"),
)

# Per channel: publishers (host, referrer, click-id parameter, utm_source) and campaigns.
_SEARCH = (("google.com", "https://www.google.com/", "gclid", "google", 70),
           ("bing.com", "https://www.bing.com/", "msclkid", "bing", 20),
           ("qwant.com", "https://www.qwant.com/", None, "qwant", 10))
_SEARCH_CUM = (70, 90, 100)
_SEARCH_CAMPAIGNS = ("brand-search", "generic-suv", "generic-electric", "accessories-search")
_DISPLAY = (("autonews.example", "autonews"), ("motormag.example", "motormag"),
            ("citylife.example", "citylife"), ("weather-now.example", "weathernow"),
            ("sport-daily.example", "sportdaily"))
_DISPLAY_CAMPAIGNS = ("winter-suv", "city-e-launch", "retargeting-cart", "black-friday")
_DISPLAY_CREATIVES = ("300x250", "728x90", "320x50", "300x600")
_SOCIAL = (("facebook.com", "https://www.facebook.com/", "fbclid", "facebook"),
           ("instagram.com", "https://l.instagram.com/", "fbclid", "instagram"),
           ("tiktok.com", "https://www.tiktok.com/", "ttclid", "tiktok"),
           ("linkedin.com", "https://www.linkedin.com/", "li_fat_id", "linkedin"))
_SOCIAL_CAMPAIGNS = ("city-e-launch", "winter-suv", "black-friday")
_VIDEO = (("youtube.com", "https://www.youtube.com/", "youtube"),
          ("dailymotion.com", "https://www.dailymotion.com/", "dailymotion"),
          ("replay-tv.example", "https://replay-tv.example/", "replaytv"))
_VIDEO_CAMPAIGNS = ("city-e-launch", "brand-film-2026")
_AFFILIATE = (("cashback-club.example", "cashbackclub"), ("coupon-hub.example", "couponhub"),
              ("autodeals.example", "autodeals"))
_AFFILIATE_CAMPAIGNS = ("accessories-cashback", "black-friday")
_EMAIL_CAMPAIGNS = ("winter-suv", "service-winter-check", "black-friday", "city-e-launch")
_PUSH_CAMPAIGNS = ("app-weekly-deals", "service-reminder", "black-friday")
_SMS_CAMPAIGNS = ("black-friday", "service-winter-check")
_CONTENT_PAGES = ("galerie", "equipements", "financement", "avis", "fiche-technique",
                  "comparateur", "garantie")
_QUIET_HOURS = ("22:00-07:00", "21:00-08:00", "23:00-07:30", "20:30-09:00")

# Entry of a session: (entry, weight). Eligibility is checked per person and session.
_ENTRIES = (("search", 22), ("search_organic", 9), ("display", 16), ("social", 11),
            ("social_organic", 3), ("email", 14), ("affiliate", 5), ("video", 6), ("push", 12),
            ("sms", 8), ("app", 8), ("direct", 8), ("store", 4))
# Share of sessions on the phone, per entry, for people who also have a desktop browser.
_MOBILE_SHARE = {"search": 0.55, "search_organic": 0.5, "display": 0.5, "social": 0.85,
                 "social_organic": 0.85, "email": 0.6, "affiliate": 0.4, "video": 0.6,
                 "direct": 0.45}

_FIRST = ("camille", "lea", "manon", "chloe", "ines", "sarah", "julie", "emma", "louise", "alice",
          "jade", "zoe", "lucas", "hugo", "louis", "nathan", "thomas", "jules", "gabriel",
          "arthur", "mathis", "leo", "noah", "adam", "paul", "karim", "yanis", "sofia")
_LAST = ("martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand", "leroy",
         "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david", "bertrand", "roux",
         "vincent", "fournier", "morel", "girard", "andre", "mercier", "dupont", "lambert",
         "bonnet", "francois", "payet", "hoarau", "peeters", "janssens")
_MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com",
                 "webmail.example.net")

_MOBILE_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
)
_DESKTOP_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
_APP_UAS = ("BrandApp/5.3.0 (iPhone; iOS 18.1; Scale/3.00)",
            "BrandApp/5.3.0 (Android 15; Pixel 8)",
            "BrandApp/5.2.4 (Android 14; SM-S921B)")

# Web traffic by local hour of day (relative weights): quiet nights, morning, lunch, evening peak.
_HOURLY = (0.5, 0.25, 0.15, 0.1, 0.1, 0.3, 0.9, 2.0, 3.0, 3.2, 3.0, 3.0, 3.8, 3.6, 3.0, 2.9,
           3.1, 3.6, 4.2, 4.6, 4.8, 4.4, 3.0, 1.4)
_HOURLY_CUM = tuple(sum(_HOURLY[: h + 1]) for h in range(24))


def _cum(weights: Iterable[float]) -> tuple[float, ...]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


def _permute(index: int, salt: int, modulus: int, multiplier: int = 48_271) -> int:
    """A bijection of [0, modulus) (multiplier coprime with modulus): unique ids, random-looking."""
    return (index * multiplier + salt) % modulus


# ----------------------------------------------------------------------------------------------
# The population
# ----------------------------------------------------------------------------------------------
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


class _Journey:
    """Builds one person's touchpoints as (epoch ms, raw event) pairs."""

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

    # -- the journey ---------------------------------------------------------------------------
    def build(self, first_ms: int) -> list[tuple[int, dict]]:
        rng, p = self.rng, self.p
        if p.converts:
            planned = 2 + min(int(rng.expovariate(0.45)), 7)
        else:
            planned = 1 + min(int(rng.expovariate(0.8)), 6)
        times = [first_ms]
        while len(times) < planned:
            nxt = self.next_session(times[-1])
            if nxt is None:
                break
            times.append(nxt)
        if p.leads and p.converts and len(times) == 1:
            # The lead (a test drive request) comes before the purchase: squeeze a session in.
            later = first_ms + self.span(2 * _HOUR, 5 * _HOUR)
            if later <= self.end_limit:
                times.append(later)
        n = len(times)
        lead_at = -1
        if p.leads:
            lead_at = self.span(0, n - 1) if (p.converts and n > 1) else n - 1
        desktop_first = 1 + self.span(0, n - 1) if (p.desktop is not None and n > 1) else -1

        # Cross-device people who get linked: identified on the phone in the first session (a
        # login, or the newsletter opened there), then on the desktop (a login, or the click).
        linking = p.link is not None and desktop_first > 0
        for s, t in enumerate(times):
            if s and p.app_onboarded and rng.random() < 0.15:
                self.passing_by(t - self.span(10 * _MINUTE, 90 * _MINUTE))
            converting = p.converts and s == n - 1
            forced_desktop = s == desktop_first
            phone_link = linking and s == 0
            email_link = (linking and forced_desktop and p.link == "email"
                          and not p.unsubscribed)
            login_link = linking and p.link == "login" and (forced_desktop or phone_link)
            if converting and p.purchase_kind == "store":
                entry = "store"
            elif converting and p.purchase_kind == "app":
                entry = "push" if p.push_opt_in and rng.random() < 0.4 else "app"
            elif email_link:
                entry = "email"         # opened on the phone, clicked on the desktop: linked
            elif converting or s == lead_at or forced_desktop or phone_link:
                entry = self.pick_entry(web_only=True, desktop=forced_desktop,
                                        converting=converting)
            elif s == 0 and p.app_device is not None and rng.random() < 0.7:
                entry = "app"           # the app is where many app users start
            else:
                entry = self.pick_entry(web_only=False, desktop=False, converting=False)
            if entry in ("app", "push"):
                self.app_session(t, entry, converting)
            elif entry == "store":
                self.store_session(t, converting)
            else:
                dev = self.pick_device(entry, forced_desktop, s == 0)
                self.web_session(t, entry, dev, converting, s == lead_at, force_login=login_link,
                                 force_click=(converting or s == lead_at or forced_desktop
                                              or phone_link))
        if p.forgets:
            last = max(t for t, _ in self.out) if self.out else first_ms
            t = min(last + self.span(_MINUTE, 20 * _MINUTE), self.end_limit + _SESSION_BUDGET - 1)
            dev = p.mobile
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                      self.web_ctx(dev, f"{SITE}/mon-compte/preferences"),
                      {"channel": "all", "opt_in": False, "source": "preference-centre"})
        return self.out

    def next_session(self, prev: int) -> int | None:
        """The start of the next session: the same day a few hours later, or a later day at an
        hour drawn from the daily traffic curve of the person's time zone."""
        rng = self.rng
        if rng.random() < 0.3:
            t = prev + self.span(2 * _HOUR, 6 * _HOUR)
        else:
            offset = datetime.fromtimestamp(prev // 1000, self.p.tz).utcoffset()
            offset_ms = int(offset.total_seconds()) * 1000 if offset else 0
            local_midnight = (prev + offset_ms) // _DAY * _DAY - offset_ms
            days_later = 1 + min(int(rng.expovariate(0.6)), 6)
            hour = _bisect(_HOURLY_CUM, rng.random() * _HOURLY_CUM[-1])
            t = local_midnight + days_later * _DAY + hour * _HOUR + self.span(0, _HOUR)
        return t if t <= self.end_limit else None

    def pick_entry(self, web_only: bool, desktop: bool, converting: bool) -> str:
        """How a session starts, among the channels this person can be reached on."""
        p = self.p
        key = (p.subscriber and not p.unsubscribed, p.push_opt_in, p.sms_opt_in and not desktop,
               p.app_device is not None, web_only, converting)
        table = _ENTRY_TABLES.get(key)
        if table is None:
            table = _ENTRY_TABLES[key] = _entry_table(*key)
        entries, cum = table
        return entries[_bisect(cum, self.rng.random() * cum[-1])]

    def pick_device(self, entry: str, forced_desktop: bool, first: bool) -> _Device:
        p = self.p
        if p.desktop is None or first or entry == "sms":
            return p.mobile
        if forced_desktop:
            return p.desktop
        return p.mobile if self.rng.random() < _MOBILE_SHARE.get(entry, 0.5) else p.desktop

    # -- sessions ------------------------------------------------------------------------------
    def web_session(self, t: int, entry: str, dev: _Device, converting: bool, lead: bool,
                    force_login: bool, force_click: bool) -> None:
        rng, p = self.rng, self.p
        product = p.product if rng.random() < 0.85 else self.pick(_ACCESSORIES)
        landing_path = f"{SITE}/{product.path}"
        channel = campaign = publisher = None
        referrer: str | None = None
        query = ""
        explicit = rng.random() < 0.4   # the tag manager sends its own channel guess

        if entry == "search":
            host, ref, click_param, source, _ = _SEARCH[_bisect(_SEARCH_CUM, rng.random() * 100)]
            campaign = self.pick(_SEARCH_CAMPAIGNS)
            referrer = ref
            if click_param and rng.random() < 0.35:
                query = f"?{click_param}={self.token(96)}"       # auto-tagging only
            else:
                query = f"?utm_source={source}&utm_medium=cpc&utm_campaign={campaign}"
                if click_param:
                    query += f"&{click_param}={self.token(96)}"
            channel = "search" if explicit else None
            publisher = host
        elif entry == "search_organic":
            referrer = _SEARCH[_bisect(_SEARCH_CUM, rng.random() * 100)][1]
            channel = "search" if explicit else None
        elif entry == "social_organic":
            referrer = self.pick(_SOCIAL)[1]
            channel = "social" if explicit else None
        elif entry == "direct":
            channel = "direct" if explicit else None
        elif entry in ("display", "video", "social"):
            clicked, t, landing = self.ad_exposure(t, entry, dev, product, force_click)
            if not clicked:
                return
            query, referrer, channel, campaign, publisher = landing
        elif entry == "affiliate":
            host, source = self.pick(_AFFILIATE)
            campaign = self.pick(_AFFILIATE_CAMPAIGNS)
            publisher = host
            query = (f"?utm_source={source}&utm_medium=affiliate&utm_campaign={campaign}"
                     f"&clickref={self.token(48)}")
            referrer = f"https://{host}/"
            self.emit(t, "ms", "click", "affiliate", self.web_ids(dev),
                      self.web_ctx(dev, landing_path + query, referrer),
                      {"offer": campaign}, campaign, publisher)
            t += self.span(1 * _SECOND, 4 * _SECOND)
            channel = "affiliate" if explicit else None
        elif entry == "email":
            # A newsletter read on the phone and clicked later on the desktop links the two.
            reader = p.mobile if dev.kind == "desktop" and force_click else dev
            clicked, t, email_landing = self.email_exposure(t, reader, dev, product, force_click)
            if not clicked:
                return
            query, campaign = email_landing
            channel = "email" if explicit else None
        elif entry == "sms":
            campaign = self.pick(_SMS_CAMPAIGNS)
            query = f"?utm_source=sms&utm_medium=sms&utm_campaign={campaign}"
            self.emit(t, "utc", "sms_click", "sms",
                      {"phone": p.phone, "cookie": dev.cookie},
                      self.web_ctx(dev, landing_path + query),
                      {"message_id": f"sms-{self.token(40)}"}, campaign)
            t += self.span(1 * _SECOND, 3 * _SECOND)
            channel = "sms" if explicit else None
        # The landing page view.
        self.emit(t, "local", "page_view", channel, self.web_ids(dev),
                  self.web_ctx(dev, landing_path + query, referrer),
                  {"product_id": product.id, "page": product.path},
                  campaign if channel is not None else None,
                  publisher if channel is not None else None)
        t = self.browse(t, dev, product, converting, lead, force_login, landing_path)

    def ad_exposure(self, t: int, entry: str, dev: _Device, product: _Product, force_click: bool):
        """Impressions on a publisher; maybe a click. Returns (clicked, t, landing details)."""
        rng = self.rng
        if entry == "display":
            host, source = self.pick(_DISPLAY)
            campaign = self.pick(_DISPLAY_CAMPAIGNS)
            medium, click_param, click_rate = "display", None, 0.35
            section = self.pick(("actu", "essais", "sport", "meteo", "loisirs"))
            page = f"https://{host}/{section}/{self.token(24)}"
            props = {"creative": f"{campaign}-{self.pick(_DISPLAY_CREATIVES)}",
                     "placement": self.pick(("article-inline", "sidebar", "header"))}
        elif entry == "video":
            host, ref, source = self.pick(_VIDEO)
            campaign = self.pick(_VIDEO_CAMPAIGNS)
            medium, click_param, click_rate = "video", None, 0.15
            page = f"{ref}watch/{self.token(44)}"
            props = {"creative": f"{campaign}-preroll-15s",
                     "completion": self.pick((0.25, 0.5, 0.75, 1.0))}
        else:
            host, ref, click_param, source = self.pick(_SOCIAL)
            campaign = self.pick(_SOCIAL_CAMPAIGNS)
            medium, click_rate = "paid_social", 0.3
            page = ref
            props = {"creative": f"{campaign}-{self.pick(('carousel', 'story', 'reel'))}"}
        channel = "social" if entry == "social" else entry
        for _ in range(1 + min(int(rng.expovariate(1.2)), 3)):
            self.emit(t, "ms", "impression", channel, {"cookie": dev.cookie},
                      {"url": page, "tz": self.tz_name, "user_agent": dev.ua},
                      dict(props), campaign, host)
            t += self.span(20 * _SECOND, 8 * _MINUTE)
        if not force_click and rng.random() >= click_rate:
            return False, t, None
        query = f"?utm_source={source}&utm_medium={medium}&utm_campaign={campaign}"
        if click_param:
            query += f"&{click_param}={self.token(96)}"
        landing = f"{SITE}/{product.path}{query}"
        self.emit(t, "ms", "click", channel, {"cookie": dev.cookie},
                  self.web_ctx(dev, landing, page), dict(props), campaign, host)
        t += self.span(1 * _SECOND, 5 * _SECOND)
        explicit = rng.random() < 0.4
        return True, t, (query, f"https://{host}/", "web" if explicit else None, campaign, host)

    def email_exposure(self, t: int, reader: _Device, dev: _Device, product: _Product,
                       force_click: bool):
        """The newsletter opened on `reader`, maybe clicked on `dev` (another device: later)."""
        rng, p = self.rng, self.p
        campaign = self.pick(_EMAIL_CAMPAIGNS)
        message_id = f"esp-{self.token(48)}"
        # Mail privacy proxies (Apple MPP) load the pixel without the reader's cookie.
        if reader is dev and rng.random() < 0.3:
            ids = {"email": p.email}
        else:
            ids = {"email": p.email, "cookie": reader.cookie}
        self.emit(t, "utc", "email_open", "email", ids,
                  {"tz": self.tz_name, "user_agent": reader.ua},
                  {"message_id": message_id}, campaign)
        if reader is not dev:
            t += self.span(20 * _MINUTE, 90 * _MINUTE)     # back home, at the computer
        if not force_click and rng.random() < 0.02:
            t += self.span(20 * _SECOND, 3 * _MINUTE)
            p.unsubscribed = True
            self.emit(t, "local", "consent", "email", {"email": p.email},
                      {"tz": self.tz_name, "user_agent": dev.ua},
                      {"channel": "email", "opt_in": False, "source": "unsubscribe-link"})
            return False, t, None
        if not force_click and rng.random() >= 0.4:
            return False, t, None
        t += self.span(5 * _SECOND, 5 * _MINUTE)
        query = f"?utm_source=newsletter&utm_medium=email&utm_campaign={campaign}"
        self.emit(t, "utc", "email_click", "email", {"email": p.email, "cookie": dev.cookie},
                  self.web_ctx(dev, f"{SITE}/{product.path}{query}"),
                  {"message_id": message_id, "link": product.path}, campaign)
        t += self.span(1 * _SECOND, 4 * _SECOND)
        return True, t, (query, campaign)

    def browse(self, t: int, dev: _Device, product: _Product, converting: bool, lead: bool,
               force_login: bool, url: str) -> int:
        """On-site behaviour after the landing page: product, price, cart, checkout, lead, order."""
        rng, p = self.rng, self.p
        buy_online = converting and product.kind != "car"
        if converting and not buy_online:
            product = p.product if p.product.kind != "car" else self.pick(_ACCESSORIES)
            url = f"{SITE}/{product.path}"
            buy_online = True
        in_stock = buy_online or rng.random() >= 0.08
        if buy_online:
            depth = 5
        else:
            r = rng.random()
            depth = 0 if r < 0.32 else 1 if r < 0.6 else 2 if r < 0.84 else 3 if r < 0.95 else 4
            if lead:
                depth = max(depth, 1)
            if product.kind == "car" or not in_stock:
                # Cars are not sold online (configure, see the price, leave); an item out of
                # stock online cannot go in the cart.
                depth = min(depth, 2)
        ids = self.web_ids
        ctx = self.web_ctx
        if depth:
            # Content pages read before the product sheet (gallery, equipment, financing...).
            for _ in range(int(rng.random() * 3.2)):
                page = f"{SITE}/{product.path}/{self.pick(_CONTENT_PAGES)}"
                t += self.span(8 * _SECOND, 120 * _SECOND)
                self.emit(t, "local", "page_view", "web" if rng.random() < 0.4 else None,
                          ids(dev), ctx(dev, page, url), {"product_id": product.id,
                                                          "page": page[len(SITE) + 1:]})
                url = page
        if force_login or (p.user is not None and not dev.logged_in and rng.random() < 0.15):
            t += self.span(10 * _SECOND, 60 * _SECOND)
            self.login(t, dev)
        if depth >= 1:
            t += self.span(5 * _SECOND, 90 * _SECOND)
            self.emit(t, "local", "product_view", "web", ids(dev), ctx(dev, url),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
        if depth >= 2:
            t += self.span(10 * _SECOND, 150 * _SECOND)
            page = "configurateur" if product.kind == "car" else "prix"
            price_url = f"{SITE}/{product.path}/{page}"
            self.emit(t, "local", "price_view", "web", ids(dev), ctx(dev, price_url, url),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
            url = price_url
        if lead:
            t = self.lead(t, dev, product, url)
        if depth >= 3 and product.kind != "car":
            quantity = 1 if product.id != "winter-tyres" else self.pick((1, 2))
            t += self.span(15 * _SECOND, 200 * _SECOND)
            self.emit(t, "local", "cart_add", "web", ids(dev), ctx(dev, f"{SITE}/panier", url),
                      {"product_id": product.id, "price": product.price, "quantity": quantity,
                       "currency": CURRENCY, "in_stock": True})
            if depth >= 4:
                if p.user is not None and not dev.logged_in and rng.random() < 0.7:
                    t += self.span(10 * _SECOND, 90 * _SECOND)
                    self.login(t, dev)
                t += self.span(30 * _SECOND, 300 * _SECOND)
                value = product.price * quantity
                self.emit(t, "local", "checkout", "web", ids(dev),
                          ctx(dev, f"{SITE}/commande", f"{SITE}/panier"),
                          {"product_id": product.id, "price": product.price,
                           "quantity": quantity, "value": value, "currency": CURRENCY})
                if depth >= 5:
                    t += self.span(60 * _SECOND, 400 * _SECOND)
                    purchase_ids = ids(dev)
                    purchase_ids["email"] = p.email_typed   # order confirmation address
                    self.emit(t, "local", "purchase", "web", purchase_ids,
                              ctx(dev, f"{SITE}/commande/confirmation", f"{SITE}/commande"),
                              {"order_id": f"o-web-{self.tag}{p.index:07d}{self.k:02d}",
                               "product_id": product.id, "price": product.price,
                               "quantity": quantity, "revenue": value, "currency": CURRENCY,
                               "payment": self.pick(("card", "card", "paypal", "apple_pay"))})
        return t

    def login(self, t: int, dev: _Device) -> None:
        p = self.p
        dev.logged_in = True
        ids = {"cookie": dev.cookie, "user": p.user}
        if self.rng.random() < 0.5:
            ids["email"] = p.email_typed
        self.emit(t, "local", "identify", "web", ids,
                  self.web_ctx(dev, f"{SITE}/mon-compte/connexion"), {"method": "password"})

    def lead(self, t: int, dev: _Device, product: _Product, url: str) -> int:
        rng, p = self.rng, self.p
        if product.kind == "car":
            form, value = self.pick((("test_drive", 120.0), ("quote", 80.0), ("brochure", 15.0)))
        else:
            form, value = "callback", 25.0
        t += self.span(40 * _SECOND, 6 * _MINUTE)
        ids = self.web_ids(dev)
        ids["email"] = p.email_typed
        give_phone = rng.random() < 0.6
        if give_phone:
            ids["phone"] = p.phone_typed
        self.emit(t, "local", "lead", "web", ids,
                  self.web_ctx(dev, f"{SITE}/{product.path}/{form.replace('_', '-')}", url),
                  {"lead_id": f"l-{self.tag}{p.index:07d}{self.k:02d}", "form": form,
                   "product_id": product.id, "store_id": p.store.id, "revenue": value,
                   "currency": CURRENCY})
        # Opt-in boxes on the form.
        if not p.subscriber and rng.random() < 0.5:
            p.subscriber = True
            t += self.span(1 * _SECOND, 5 * _SECOND)
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "email": p.email_typed},
                      self.web_ctx(dev, url), {"channel": "email", "opt_in": True,
                                               "source": f"form-{form}"})
        if give_phone and not p.sms_opt_in and rng.random() < 0.3:
            p.sms_opt_in = True
            t += self.span(1 * _SECOND, 5 * _SECOND)
            self.emit(t, "local", "consent", "web", {"cookie": dev.cookie, "phone": p.phone_typed},
                      self.web_ctx(dev, url), {"channel": "sms", "opt_in": True,
                                               "source": f"form-{form}",
                                               "max_per_day": 1})
        return t

    def app_session(self, t: int, entry: str, converting: bool) -> None:
        rng, p = self.rng, self.p
        ids, ctx = self.app_ids, self.app_ctx
        if not p.app_onboarded:
            p.app_onboarded = True
            self.emit(t, "ms", "app_open", "app", ids(), ctx(),
                      {"first_open": True, "app_version": p.app_ua.split(" ")[0].split("/")[1]})
            t += self.span(10 * _SECOND, 60 * _SECOND)
            opt_in = rng.random() < 0.72
            props: dict[str, Any] = {"channel": "push", "opt_in": opt_in,
                                     "source": "app-onboarding"}
            if opt_in and rng.random() < 0.4:
                props["quiet_hours"] = self.pick(_QUIET_HOURS)
            if opt_in and rng.random() < 0.25:
                props["max_per_day"] = self.pick((1, 2, 3))
            consent_ids = ids()
            consent_ids["email"] = p.email_typed
            self.emit(t, "local", "consent", "app", consent_ids, ctx(), props)
            p.push_opt_in = opt_in
        elif entry == "push":
            campaign = self.pick(_PUSH_CAMPAIGNS)
            self.emit(t, "ms", "push_open", "push", ids(), ctx(),
                      {"message_id": f"push-{self.token(48)}",
                       "deeplink": f"brandapp://{p.product.path}"},
                      campaign)
        else:
            self.emit(t, "ms", "app_open", "app", ids(), ctx(), {"first_open": False})
        product = p.product
        if converting and product.kind == "car":
            product = self.pick(_ACCESSORIES)   # cars are bought at the dealership
        if rng.random() < 0.25 and not converting:
            return
        t += self.span(5 * _SECOND, 60 * _SECOND)
        in_stock = rng.random() >= 0.08
        self.emit(t, "ms", "product_view", "app", ids(), ctx(),
                  {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                   "in_stock": in_stock})
        if converting or rng.random() < 0.4:
            t += self.span(10 * _SECOND, 120 * _SECOND)
            self.emit(t, "ms", "price_view", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "currency": CURRENCY,
                       "in_stock": in_stock})
        if converting:
            t += self.span(20 * _SECOND, 180 * _SECOND)
            self.emit(t, "ms", "cart_add", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "quantity": 1,
                       "currency": CURRENCY, "in_stock": True})
            t += self.span(30 * _SECOND, 240 * _SECOND)
            self.emit(t, "ms", "checkout", "app", ids(), ctx(),
                      {"product_id": product.id, "price": product.price, "quantity": 1,
                       "value": product.price, "currency": CURRENCY})
            t += self.span(30 * _SECOND, 300 * _SECOND)
            order_ids = ids()
            order_ids["email"] = p.email_typed
            self.emit(t, "ms", "purchase", "app", order_ids, ctx(),
                      {"order_id": f"o-app-{self.tag}{p.index:07d}{self.k:02d}",
                       "product_id": product.id, "price": product.price, "quantity": 1,
                       "revenue": product.price, "currency": CURRENCY, "payment": "apple_pay"})

    def passing_by(self, t: int) -> None:
        """The phone crosses the dealership's geofence (the "near the store today" moment)."""
        p, store = self.p, self.p.store
        self.emit(t, "ms", "geofence_enter", "store", self.app_ids(),
                  self.store_ctx(lat=round(store.lat + (self.rng.random() - 0.5) * 0.006, 5),
                                 lon=round(store.lon + (self.rng.random() - 0.5) * 0.006, 5),
                                 user_agent=p.app_ua),
                  {"geofence_id": f"gf-{store.id}", "radius_m": 300})

    def store_session(self, t: int, converting: bool) -> None:
        """A visit to the person's dealership: detected by the app (geofence + beacon) or by the
        guest Wi-Fi portal; when converting, the purchase at the till."""
        rng, p = self.rng, self.p
        store = p.store
        if p.app_onboarded and rng.random() < 0.85:
            if rng.random() < 0.7:
                self.passing_by(t)
                t += self.span(1 * _MINUTE, 8 * _MINUTE)
            self.emit(t, "ms", "store_visit", "store", self.app_ids(),
                      self.store_ctx(beacon_id=self.pick(store.beacons), user_agent=p.app_ua),
                      {"detection": "beacon", "rssi": -self.span(55, 90),
                       "dwell_s": self.span(30, 1800)})
        elif rng.random() < 0.55:
            # The guest Wi-Fi portal asks for an e-mail address.
            self.emit(t, "local", "store_visit", "store", {"email": p.email_typed},
                      self.store_ctx(), {"detection": "wifi", "dwell_s": self.span(300, 3600)})
        else:
            # A QR code on a car in the showroom opens the product page.
            dev = p.mobile
            product = p.product
            self.emit(t, "local", "page_view", None, self.web_ids(dev),
                      self.web_ctx(dev, f"{SITE}/{product.path}?utm_source={store.id}"
                                        f"&utm_medium=qr&utm_campaign=showroom"),
                      {"product_id": product.id, "page": product.path, "store_id": store.id})
        if not converting:
            return
        t += self.span(20 * _MINUTE, 100 * _MINUTE)
        product = p.product
        revenue = product.price
        props: dict[str, Any] = {"order_id": f"o-{store.id}-{self.tag}{p.index:07d}{self.k:02d}",
                                 "product_id": product.id, "quantity": 1,
                                 "price": product.price}
        if product.kind == "car" and rng.random() < 0.3:
            discount = self.pick((500.0, 1000.0, 1500.0))
            props["discount"] = discount
            revenue = product.price - discount
        props["revenue"] = revenue
        props["currency"] = CURRENCY
        ids: dict[str, str] = {}
        if not p.has_loyalty:
            p.has_loyalty = True          # the card is created at the till
            props["loyalty_new"] = True
        ids["loyalty"] = p.loyalty
        ids["email"] = p.email_typed
        if rng.random() < 0.3:
            ids["phone"] = p.phone_typed
        self.emit(t, "local", "purchase", "store", ids, self.store_ctx(), props)


def _entry_table(email: bool, push: bool, sms: bool, app: bool, web_only: bool,
                 converting: bool) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Entries open to a person with these reachability flags, with cumulative weights."""
    entries, weights = [], []
    for entry, weight in _ENTRIES:
        if ((entry == "email" and not email) or (entry == "push" and not push)
                or (entry == "sms" and not sms) or (entry == "app" and not app)
                or (web_only and entry in ("store", "app", "push"))):
            continue
        entries.append(entry)
        weights.append(weight * 0.5 if converting and entry in ("display", "video") else weight)
    return tuple(entries), _cum(weights)


_ENTRY_TABLES: dict[tuple, tuple[tuple[str, ...], tuple[float, ...]]] = {}


def _bisect(cum: tuple, x: float) -> int:
    """Index of the bucket of `x` in cumulative weights `cum` (x in [0, cum[-1]))."""
    i = bisect_right(cum, x)
    return i if i < len(cum) else len(cum) - 1


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


# ----------------------------------------------------------------------------------------------
# Malformed records
# ----------------------------------------------------------------------------------------------
MALFORMED_KINDS = (
    "truncated_json",       # the producer's buffer was cut
    "missing_event_id",
    "naive_timestamp",      # ISO 8601 without an offset
    "wrong_types",          # ids as a string, event_time as a Mongo-export object, ...
    "binary_garbage",       # gzip'd payload or random bytes
    "avro_unknown_schema",  # Confluent wire format with a schema id nobody registered
    "not_an_object",        # a JSON array (a batch sent as one message), a bare string, null
    "empty_event_id",
    "csv_line",             # a CSV export piped to the topic
    "empty",                # a zero-length message (a tombstone on the wrong topic)
)
_UNKNOWN_SCHEMA_IDS = (4242, 90_001, 1_000_003)


def malformed_events(n: int, seed: int) -> list[bytes]:
    """`n` realistic bad records for dead-letter demos and tests.

    Record `i` is of kind `MALFORMED_KINDS[i % len(MALFORMED_KINDS)]`, so any `n >= 10` covers
    every kind. None of them is a valid JSON touchpoint. No record contains a newline byte, so
    they can be mixed into a JSONL file (`write_jsonl` accepts bytes) for `parcours replay`."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    rng = random.Random(f"parcours-malformed:{seed}")
    base_ms = 1_763_622_900_000  # 2025-11-20T07:15:00Z
    out: list[bytes] = []
    for i in range(n):
        kind = MALFORMED_KINDS[i % len(MALFORMED_KINDS)]
        t = base_ms + i * 1_250 + rng.randrange(1_000)
        good = {"event_id": f"bad-{seed}-{i}", "event_time": _iso(t, PARIS),
                "type": rng.choice(("page_view", "click", "impression", "email_open")),
                "channel": rng.choice(("web", "display", "email", "search")),
                "ids": {"cookie": f"c-{rng.getrandbits(64):016x}"},
                "context": {"url": f"{SITE}/suv-x?utm_source=autonews&utm_medium=display",
                            "tz": "Europe/Paris"},
                "properties": {"product_id": "suv-x"}}
        if kind == "truncated_json":
            raw = orjson.dumps(good)
            record = raw[: rng.randrange(1, len(raw) - 1)]
        elif kind == "missing_event_id":
            del good["event_id"]
            record = orjson.dumps(good)
        elif kind == "naive_timestamp":
            good["event_time"] = datetime.fromtimestamp(t // 1000, PARIS).replace(
                tzinfo=None).isoformat(timespec="seconds")
            record = orjson.dumps(good)
        elif kind == "wrong_types":
            variant = rng.randrange(4)
            if variant == 0:
                good["ids"] = good["ids"]["cookie"]
            elif variant == 1:
                good["event_time"] = {"$date": {"$numberLong": str(t)}}
            elif variant == 2:
                good["type"] = [good["type"]]
            else:
                good["context"] = good["context"]["url"]
            record = orjson.dumps(good)
        elif kind == "binary_garbage":
            if rng.random() < 0.5:
                # An application-level gzip of the JSON; 0x0a / 0x0d bytes are masked so the
                # record stays on one line of a JSONL file.
                record = _one_line(gzip.compress(orjson.dumps(good), mtime=0))
            else:
                record = bytes(rng.choice(_GARBAGE_BYTES) for _ in range(rng.randrange(8, 96)))
        elif kind == "avro_unknown_schema":
            schema_id = _UNKNOWN_SCHEMA_IDS[rng.randrange(len(_UNKNOWN_SCHEMA_IDS))]
            body = b"".join(_avro_string(s) for s in (good["event_id"], good["event_time"],
                                                      good["type"], good["channel"]))
            body += _avro_long(t)
            record = b"\x00" + struct.pack(">I", schema_id) + body
            record = _one_line(record)
        elif kind == "not_an_object":
            variant = rng.randrange(3)
            if variant == 0:
                second = dict(good, event_id=f"bad-{seed}-{i}-b")
                record = orjson.dumps([good, second])
            elif variant == 1:
                record = orjson.dumps(f"page_view {good['event_id']}")
            else:
                record = b"null"
        elif kind == "empty_event_id":
            good["event_id"] = ""
            record = orjson.dumps(good)
        elif kind == "csv_line":
            record = ",".join((good["event_id"], good["event_time"], good["type"],
                               good["channel"], good["ids"]["cookie"])).encode()
        else:
            record = b""
        out.append(record)
    return out


# Bytes that are neither JSON openers, whitespace, nor the Avro magic byte, nor line breaks.
_GARBAGE_BYTES = bytes(b for b in range(1, 256)
                       if b not in b"\n\r\t {[\"-0123456789tfn")


def _one_line(raw: bytes | bytearray) -> bytes:
    """Mask CR/LF bytes so a binary record stays on one line of a JSONL file."""
    return bytes(b ^ 0x20 if b in (0x0A, 0x0D) else b for b in raw)


def _avro_long(value: int) -> bytes:
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _avro_string(value: str) -> bytes:
    raw = value.encode()
    return _avro_long(len(raw)) + raw


# ----------------------------------------------------------------------------------------------
# Sinks for simulated events
# ----------------------------------------------------------------------------------------------
def _encode(event: dict | bytes) -> bytes:
    if isinstance(event, (bytes, bytearray, memoryview)):
        return bytes(event)
    return orjson.dumps(event)


def write_jsonl(events: Iterable[dict | bytes], path: str | os.PathLike) -> int:
    """Write one JSON document per line (orjson); returns the number of lines.

    Items may also be raw bytes (e.g. from `malformed_events`), written as they are; a bytes item
    containing a line break is refused. The file appears atomically (written aside, then
    renamed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    count = 0
    try:
        with open(tmp, "wb", buffering=1 << 20) as fh:
            write = fh.write
            for event in events:
                line = _encode(event)
                if b"\n" in line or b"\r" in line:
                    raise ValueError(f"record {count} contains a line break: not JSONL-safe")
                write(line)
                write(b"\n")
                count += 1
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


_PERSONAL_ID_TYPES = frozenset({"email", "phone"})


def _key(event: dict | bytes, key_field: str | None) -> bytes | None:
    """The Kafka key a producer would use.

    By default the event's first identifier, so one browser, device or account stays on one
    partition; raw personal identifiers (email, phone) are passed over when the event has another
    one, as a careful producer keeps them out of keys (keys show up in tooling and logs). With
    `key_field`: that top-level field (e.g. "event_id"), else that identifier type (e.g. "user").
    Bytes records and events without a usable value get no key (the partitioner spreads them)."""
    if not isinstance(event, dict):
        return None
    ids = event.get("ids")
    if key_field is None:
        if not isinstance(ids, dict):
            return None
        fallback = None
        for id_type, value in ids.items():
            if value is None or value == "":
                continue
            if id_type not in _PERSONAL_ID_TYPES:
                return str(value).encode()
            if fallback is None:
                fallback = value
        return None if fallback is None else str(fallback).encode()
    value = event.get(key_field)
    if value is None and isinstance(ids, dict):
        value = ids.get(key_field)
    return None if value is None or value == "" else str(value).encode()


async def produce(events: Iterable[dict | bytes], bootstrap: str, topic: str, *,
                  key_field: str | None = None, linger_ms: int = 5,
                  max_batch_size: int = 256 * 1024, window: int = 20_000) -> int:
    """Send `events` (dicts as JSON, bytes as they are) to `topic`; returns how many were acked.

    `bootstrap` is "host:port[,host:port]" or a `kafka://` URL. Sends are pipelined (at most
    `window` in flight) and every one is awaited before returning; the first failed send raises.
    Plain at-least-once producer (no idempotence: the embedded Tansu broker rejects it)."""
    from aiokafka import AIOKafkaProducer  # lazy: the module stays importable without Kafka

    servers = bootstrap.strip()
    for scheme in ("kafka://", "aiokafka://"):
        if servers.startswith(scheme):
            servers = servers[len(scheme):]
    servers = servers.rstrip("/")
    producer = AIOKafkaProducer(bootstrap_servers=servers, client_id="parcours-simulate",
                                linger_ms=linger_ms, max_batch_size=max_batch_size,
                                acks="all", enable_idempotence=False)
    await producer.start()
    count = 0
    try:
        pending = []
        for event in events:
            pending.append(await producer.send(topic, _encode(event), key=_key(event, key_field)))
            if len(pending) >= window:
                for future in pending:
                    await future
                count += len(pending)
                pending.clear()
        await producer.flush()
        for future in pending:
            await future
        count += len(pending)
    finally:
        await producer.stop()
    return count
