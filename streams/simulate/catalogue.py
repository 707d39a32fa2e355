"""Reference data of the simulated brand: stores, markets, products, people's names and e-mail
domains, user agents; and the helpers for cumulative-weight tables (`cumulative`, `bucket`)."""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

SITE = "https://brand.example"
CURRENCY = "EUR"


@dataclass(frozen=True, slots=True)
class Store:
    id: str
    lat: float
    lon: float
    beacons: tuple[str, ...]


STORES = {s.id: s for s in (
    Store("paris-15", 48.8412, 2.2910, ("b-1", "b-2", "b-3")),
    Store("paris-8", 48.8756, 2.3125, ("b-11", "b-12")),
    Store("lyon-3", 45.7602, 4.8590, ("b-21", "b-22")),
    Store("lille-1", 50.6366, 3.0635, ("b-31",)),
    Store("bordeaux-2", 44.8510, -0.5700, ("b-41", "b-42")),
    Store("marseille-8", 43.2590, 5.3900, ("b-51",)),
    Store("brussels-1", 50.8466, 4.3528, ("b-61", "b-62")),
    Store("liege-1", 50.6326, 5.5797, ("b-71",)),
    Store("luxembourg-1", 49.6116, 6.1319, ("b-81",)),
    Store("saint-denis-re", -20.8823, 55.4504, ("b-91",)),
    Store("fort-de-france", 14.6161, -61.0588, ("b-95",)),
)}


@dataclass(frozen=True, slots=True)
class Market:
    tz_name: str
    weight: int
    country_code: str      # phone
    mobile_prefix: str     # national significant number prefix of mobiles
    mobile_digits: int     # digits after the prefix
    stores: tuple[str, ...]


MARKETS = (
    Market("Europe/Paris", 72, "+33", "6", 8,
           ("paris-15", "paris-8", "lyon-3", "lille-1", "bordeaux-2", "marseille-8")),
    Market("Europe/Brussels", 12, "+32", "47", 7, ("brussels-1", "liege-1")),
    Market("Europe/Luxembourg", 4, "+352", "691", 6, ("luxembourg-1",)),
    Market("Indian/Reunion", 6, "+262", "692", 6, ("saint-denis-re",)),
    Market("America/Martinique", 6, "+596", "696", 6, ("fort-de-france",)),
)
MARKET_CUM = tuple(sum(m.weight for m in MARKETS[: i + 1]) for i in range(len(MARKETS)))


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    kind: str      # car | accessory | service
    price: float
    path: str


CARS = (
    Product("city-e", "car", 24900.0, "city-e"),
    Product("suv-x", "car", 32900.0, "suv-x"),
    Product("suv-x-hybrid", "car", 36900.0, "suv-x-hybrid"),
    Product("break-t", "car", 28900.0, "break-t"),
    Product("van-pro", "car", 38900.0, "utilitaires/van-pro"),
)
ACCESSORIES = (
    Product("roof-box", "accessory", 549.0, "accessoires/coffre-de-toit"),
    Product("wallbox-7kw", "accessory", 1290.0, "accessoires/borne-de-recharge"),
    Product("winter-tyres", "accessory", 889.0, "accessoires/pneus-hiver"),
    Product("dashcam", "accessory", 189.0, "accessoires/dashcam"),
    Product("floor-mats", "accessory", 79.0, "accessoires/tapis"),
    Product("bike-rack", "accessory", 429.0, "accessoires/porte-velos"),
    Product("service-pack-3y", "service", 599.0, "services/entretien-3-ans"),
    Product("winter-check", "service", 89.0, "services/bilan-hiver"),
    Product("extended-warranty", "service", 790.0, "services/extension-garantie"),
)

FIRST_NAMES = ("camille", "lea", "manon", "chloe", "ines", "sarah", "julie", "emma", "louise",
               "alice", "jade", "zoe", "lucas", "hugo", "louis", "nathan", "thomas", "jules",
               "gabriel", "arthur", "mathis", "leo", "noah", "adam", "paul", "karim", "yanis",
               "sofia")
LAST_NAMES = ("martin", "bernard", "dubois", "thomas", "robert", "richard", "petit", "durand",
              "leroy", "moreau", "simon", "laurent", "lefebvre", "michel", "garcia", "david",
              "bertrand", "roux", "vincent", "fournier", "morel", "girard", "andre", "mercier",
              "dupont", "lambert", "bonnet", "francois", "payet", "hoarau", "peeters", "janssens")
MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com",
                "webmail.example.net")

MOBILE_UAS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Mobile Safari/537.36",
)
DESKTOP_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
)
APP_UAS = ("BrandApp/5.3.0 (iPhone; iOS 18.1; Scale/3.00)",
           "BrandApp/5.3.0 (Android 15; Pixel 8)",
           "BrandApp/5.2.4 (Android 14; SM-S921B)")


def cumulative(weights: Iterable[float]) -> tuple[float, ...]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return tuple(out)


def bucket(cum: tuple, x: float) -> int:
    """Index of the bucket of `x` in cumulative weights `cum` (x in [0, cum[-1]))."""
    i = bisect_right(cum, x)
    return i if i < len(cum) else len(cum) - 1
