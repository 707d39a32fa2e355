"""Reference data for rules: the store list (for geofences) and the inventory (for stock joins).

Pure Python, no Faust or Kafka. Both are read from small CSV files named by a rule pack's
`reference:` section; the worker keeps the inventory current from a compacted topic through
`Inventory.apply`.

- stores CSV: `store_id,name,lat,lon,tz` (decimal degrees, IANA time zone)
- inventory CSV: `store_id,product_id,quantity` (a non-negative integer)

Bad files raise `ReferenceDataError`, which lists every problem found as `FILE:LINE: message`.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from streams.errors import ConfigError

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)

STORE_COLUMNS = ("store_id", "name", "lat", "lon", "tz")
INVENTORY_COLUMNS = ("store_id", "product_id", "quantity")


class ReferenceDataError(ConfigError):
    """A reference file is missing or malformed. `errors` holds one `FILE:LINE: message` per
    problem; `str()` is those lines joined by newlines."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


@dataclass(frozen=True)
class Store:
    id: str
    name: str
    lat: float
    lon: float
    tz: str


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points given in decimal degrees."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def _read_csv(path: str | Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for each non-blank data row, values stripped. Raises
    ReferenceDataError for a missing file, an empty file or missing columns."""
    name = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReferenceDataError([f"{name}: no such file"]) from None
    except OSError as e:
        raise ReferenceDataError([f"{name}: cannot read: {e.strerror or e}"]) from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ReferenceDataError([f"{name}: empty file (expected the header "
                                      f"{','.join(columns)})"]) from None
        except (csv.Error, UnicodeDecodeError) as e:
            raise ReferenceDataError([f"{name}:1: {e}"]) from None
        missing = [c for c in columns if c not in header]
        if missing:
            raise ReferenceDataError([
                f"{name}:1: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"(the header is '{','.join(header)}'; expected {','.join(columns)})"])
        index = {c: header.index(c) for c in columns}
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                values = {c: (row[i].strip() if i < len(row) else "") for c, i in index.items()}
                yield reader.line_num, values
        except (csv.Error, UnicodeDecodeError) as e:
            raise ReferenceDataError([f"{name}:{reader.line_num + 1}: {e}"]) from None


def _number(text: str, what: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not (low <= value <= high):  # also rejects nan
        raise ValueError(f"{what} {text!r} is out of range ({low:g}..{high:g})")
    return value


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    import zoneinfo

    return frozenset(zoneinfo.available_timezones())


def _check_tz(tz: str) -> None:
    """Reject an unknown IANA zone name; accept any name when this system has no zone database."""
    zones = _known_zones()
    if zones and tz not in zones:
        raise ValueError(f"tz {tz!r} is not an IANA time zone (e.g. Europe/Paris)")


class Stores:
    """The store list, with distance look-ups. Lists are small (tens to a few thousand stores), so
    look-ups scan every store, rejecting most by a latitude band before any trigonometry."""

    def __init__(self, stores: Iterable[Store] = ()):
        self._by_id: dict[str, Store] = {}
        for store in stores:
            self._by_id[store.id] = store
        # (lat radians, lon radians, cos lat, store): precomputed for the haversine scan
        self._points = [(math.radians(s.lat), math.radians(s.lon), math.cos(math.radians(s.lat)), s)
                        for s in self._by_id.values()]

    @classmethod
    def load(cls, path: str | Path) -> "Stores":
        """Read a `store_id,name,lat,lon,tz` CSV; raises ReferenceDataError listing every bad
        row."""
        errors: list[str] = []
        stores: list[Store] = []
        first_line: dict[str, int] = {}
        for line, row in _read_csv(path, STORE_COLUMNS):
            where = f"{path}:{line}"
            try:
                if not row["store_id"]:
                    raise ValueError("store_id is empty")
                if row["store_id"] in first_line:
                    raise ValueError(f"store_id {row['store_id']!r} appears twice "
                                     f"(first at line {first_line[row['store_id']]})")
                lat = _number(row["lat"], "lat", -90.0, 90.0)
                lon = _number(row["lon"], "lon", -180.0, 180.0)
                if row["tz"]:
                    _check_tz(row["tz"])
            except ValueError as e:
                errors.append(f"{where}: {e}")
                continue
            first_line[row["store_id"]] = line
            stores.append(Store(row["store_id"], row["name"], lat, lon, row["tz"]))
        if errors:
            raise ReferenceDataError(errors)
        return cls(stores)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Store]:
        return iter(self._by_id.values())

    def __contains__(self, store_id: object) -> bool:
        return store_id in self._by_id

    def ids(self) -> list[str]:
        return list(self._by_id)

    def get(self, store_id: str) -> Store | None:
        return self._by_id.get(store_id)

    def within(self, lat: float, lon: float, metres: float) -> list[tuple[float, Store]]:
        """The stores at most `metres` from (lat, lon), as (distance in metres, store), nearest
        first (ties by store id)."""
        if metres < 0:
            return []
        p1, l1 = math.radians(lat), math.radians(lon)
        cos1 = math.cos(p1)
        band = metres / EARTH_RADIUS_M  # the great-circle distance is at least R * |dlat|
        found = []
        for p2, l2, cos2, store in self._points:
            if abs(p2 - p1) > band:
                continue
            a = math.sin((p2 - p1) / 2) ** 2 + cos1 * cos2 * math.sin((l2 - l1) / 2) ** 2
            d = 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))
            if d <= metres:
                found.append((d, store))
        found.sort(key=lambda item: (item[0], item[1].id))
        return found

    def nearest(self, lat: float, lon: float,
                max_m: float = math.inf) -> tuple[float, Store] | None:
        """The nearest store within `max_m` metres as (distance in metres, store), or None."""
        if math.isinf(max_m):
            max_m = math.pi * EARTH_RADIUS_M  # half the circumference: every point on Earth
        found = self.within(lat, lon, max_m)
        return found[0] if found else None


def _quantity(value: object) -> int:
    """A stock quantity: a non-negative integer (int, integral float or digit string)."""
    if isinstance(value, bool):
        raise ValueError(f"quantity {value!r} is not a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"quantity {value!r} is not a whole number") from None
    if not isinstance(value, int):
        raise ValueError(f"quantity {value!r} is not a whole number")
    if value < 0:
        raise ValueError(f"quantity {value} is negative")
    return value


class Inventory:
    """Units in stock per (store, product). Unknown pairs have 0 units."""

    def __init__(self, rows: Iterable[tuple[str, str, int]] = ()):
        self._by_product: dict[str, dict[str, int]] = {}
        for store_id, product_id, quantity in rows:
            self.set(store_id, product_id, quantity)

    @classmethod
    def load(cls, path: str | Path) -> "Inventory":
        """Read a `store_id,product_id,quantity` CSV. Raises ReferenceDataError listing every bad
        row (empty ids, a quantity that is not a non-negative integer, a pair listed twice)."""
        errors: list[str] = []
        inventory = cls()
        first_line: dict[tuple[str, str], int] = {}
        for line, row in _read_csv(path, INVENTORY_COLUMNS):
            key = (row["store_id"], row["product_id"])
            try:
                for column in ("store_id", "product_id"):
                    if not row[column]:
                        raise ValueError(f"{column} is empty")
                if key in first_line:
                    raise ValueError(f"store {key[0]!r} product {key[1]!r} appears twice "
                                     f"(first at line {first_line[key]})")
                quantity = _quantity(row["quantity"])
            except ValueError as e:
                errors.append(f"{path}:{line}: {e}")
                continue
            first_line[key] = line
            inventory.set(key[0], key[1], quantity)
        if errors:
            raise ReferenceDataError(errors)
        return inventory

    def __len__(self) -> int:
        """The number of (store, product) pairs with a known quantity."""
        return sum(len(stores) for stores in self._by_product.values())

    def rows(self) -> Iterator[tuple[str, str, int]]:
        """Every (store_id, product_id, quantity) held, by product then store."""
        for product_id, stores in self._by_product.items():
            for store_id, quantity in stores.items():
                yield store_id, product_id, quantity

    def quantity(self, store_id: str, product_id: str) -> int:
        return self._by_product.get(product_id, {}).get(store_id, 0)

    def set(self, store_id: str, product_id: str, quantity: int) -> None:
        """Record the units of a product in a store (an update from the compacted topic)."""
        if quantity < 0:
            raise ValueError(f"quantity {quantity} is negative")
        self._by_product.setdefault(product_id, {})[store_id] = int(quantity)

    def apply(self, record: dict) -> bool:
        """Apply one `{"store_id", "product_id", "quantity"}` record. Returns False (and changes
        nothing) when the record is not a mapping, an id is missing or empty, or the quantity is
        not a non-negative integer."""
        if not isinstance(record, dict):
            return False
        store_id, product_id = record.get("store_id"), record.get("product_id")
        if not (isinstance(store_id, str) and store_id
                and isinstance(product_id, str) and product_id):
            return False
        try:
            quantity = _quantity(record.get("quantity"))
        except ValueError:
            return False
        self.set(store_id, product_id, quantity)
        return True

    def stores_with(self, product_id: str, min_quantity: int = 1) -> set[str]:
        """The stores holding at least `min_quantity` units of the product."""
        return {s for s, q in self._by_product.get(product_id, {}).items() if q >= min_quantity}
