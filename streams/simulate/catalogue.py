"""Reference data of the simulated brand: stores, markets, products, channels (publishers,
campaigns, click-id parameters), session entries, names, user agents, the daily traffic curve;
and the helpers for cumulative-weight tables."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

SITE = "https://brand.example"
CURRENCY = "EUR"


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


def _bisect(cum: tuple, x: float) -> int:
    """Index of the bucket of `x` in cumulative weights `cum` (x in [0, cum[-1]))."""
    i = bisect_right(cum, x)
    return i if i < len(cum) else len(cum) - 1
