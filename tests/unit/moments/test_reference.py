"""Reference data: the store list (distances, geofence look-ups) and the inventory."""
from __future__ import annotations

import csv
import math
import zoneinfo
from pathlib import Path

import pytest

from streams.moments.reference import (
    EARTH_RADIUS_M,
    Inventory,
    ReferenceDataError,
    Store,
    Stores,
    haversine_m,
)

PACK = Path(__file__).resolve().parents[3] / "streams" / "moments" / "pack"
PARIS_15 = (48.8412, 2.291)
POINT = (48.8437, 2.2958)  # a few streets from the Paris 15 store


def _equirectangular_m(lat1, lon1, lat2, lon2):
    """An independent small-distance approximation, to check haversine against."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stores() -> Stores:
    return Stores.load(PACK / "stores.csv")


# --- distances ---

def test_haversine_one_degree_of_latitude_is_r_times_pi_over_180():
    assert haversine_m(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180, rel=1e-12)
    assert haversine_m(10, 20, 10, 20) == 0.0


def test_haversine_antipodes_are_half_the_circumference():
    assert haversine_m(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_M, rel=1e-12)


def test_haversine_paris_15_to_the_nearby_point_is_about_450_m():
    d = haversine_m(*PARIS_15, *POINT)
    assert 440 < d < 460
    assert d == pytest.approx(_equirectangular_m(*PARIS_15, *POINT), abs=0.5)


# --- stores ---

def test_stores_load_the_pack_list(stores):
    with open(PACK / "stores.csv", newline="", encoding="utf-8") as f:
        assert len(stores) == len(list(csv.DictReader(f))) >= 11
    assert [s.id for s in stores][:2] == ["paris-15", "paris-8"]  # file order
    assert "paris-15" in stores and "nowhere" not in stores
    assert stores.get("paris-15") == Store("paris-15", "Brand Paris 15", 48.8412, 2.291,
                                           "Europe/Paris")
    assert stores.get("liege-1").name == "Brand Liège"  # UTF-8
    assert stores.get("saint-denis-re").tz == "Indian/Reunion"
    assert stores.get("nowhere") is None


def test_nearest_store_within_a_radius(stores):
    d, store = stores.nearest(*POINT, 500)
    assert store.id == "paris-15"
    assert d == pytest.approx(haversine_m(*POINT, store.lat, store.lon))
    assert 440 < d < 460
    assert stores.nearest(*POINT, 400) is None


def test_nearest_without_a_limit_finds_the_closest_anywhere(stores):
    assert stores.nearest(45.75, 4.85)[1].id == "lyon-3"
    assert stores.nearest(-21.0, 55.5)[1].id == "saint-denis-re"
    assert stores.nearest(14.6, -61.0)[1].id == "fort-de-france"


def test_within_lists_stores_nearest_first(stores):
    found = stores.within(*POINT, 5000)
    assert [s.id for _, s in found] == ["paris-15", "paris-8"]
    expected_paris_8 = _equirectangular_m(*POINT, 48.8756, 2.3125)
    assert found[1][0] == pytest.approx(expected_paris_8, abs=1)
    assert 3500 < found[1][0] < 4000
    assert found[0][0] < found[1][0]
    assert stores.within(*POINT, 100) == []
    assert stores.within(*POINT, -1) == []


def test_within_a_wide_radius_holds_the_french_and_belgian_stores(stores):
    ids = {s.id for _, s in stores.within(*PARIS_15, 700_000)}
    assert ids == {"paris-15", "paris-8", "lyon-3", "lille-1", "bordeaux-2", "marseille-8",
                   "brussels-1", "liege-1", "luxembourg-1"}


def test_within_across_the_antimeridian():
    stores = Stores([Store("east", "East", 0.0, 179.999, "UTC"),
                     Store("west", "West", 0.0, -179.999, "UTC"),
                     Store("far", "Far", 0.0, 0.0, "UTC")])
    found = stores.within(0.0, 179.9995, 500)
    assert [s.id for _, s in found] == ["east", "west"]
    assert found[1][0] == pytest.approx(EARTH_RADIUS_M * math.radians(0.0015), rel=1e-6)


def test_the_latitude_band_keeps_stores_exactly_on_the_radius():
    # due north: the distance equals R * dlat, the band's own bound
    stores = Stores([Store("n", "North", 1.0, 0.0, "UTC")])
    exact = haversine_m(0.0, 0.0, 1.0, 0.0)
    assert [s.id for _, s in stores.within(0.0, 0.0, exact + 1e-6)] == ["n"]
    assert stores.within(0.0, 0.0, exact - 1) == []


def test_stores_load_reports_every_bad_row(tmp_path):
    path = _write(tmp_path / "s.csv", "store_id,name,lat,lon,tz\n"
                                      "ok,OK,48.0,2.0,Europe/Paris\n"
                                      "a,A,abc,2.0,Europe/Paris\n"
                                      "\n"
                                      "b,B,91,2.0,Europe/Paris\n"
                                      "c,C,48.0,2.0,Mars/Olympus\n"
                                      "ok,Again,48.0,2.0,\n"
                                      ",Nameless,48.0,2.0,\n")
    with pytest.raises(ReferenceDataError) as err:
        Stores.load(path)
    expected = [
        f"{path}:3: lat 'abc' is not a number",
        f"{path}:5: lat '91' is out of range (-90..90)",
        f"{path}:6: tz 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Paris)",
        f"{path}:7: store_id 'ok' appears twice (first at line 2)",
        f"{path}:8: store_id is empty",
    ]
    if not zoneinfo.available_timezones():  # no zone database here: zone names go unchecked
        expected.remove(expected[2])
    assert err.value.errors == expected
    assert str(err.value) == "\n".join(err.value.errors)
    assert isinstance(err.value, ValueError)


def test_stores_load_missing_file_and_columns(tmp_path):
    with pytest.raises(ReferenceDataError, match=r"^.*nope\.csv: no such file$"):
        Stores.load(tmp_path / "nope.csv")
    path = _write(tmp_path / "s.csv", "store_id,name,latitude,lon,tz\nx,X,1,2,UTC\n")
    with pytest.raises(ReferenceDataError) as err:
        Stores.load(path)
    assert str(err.value).startswith(f"{path}:1: missing column lat (the header is")
    empty = _write(tmp_path / "e.csv", "")
    with pytest.raises(ReferenceDataError, match="empty file"):
        Stores.load(empty)


def test_stores_columns_in_any_order_with_blank_tz(tmp_path):
    path = _write(tmp_path / "s.csv", "lat,lon,store_id,name,tz,extra\n 1.5 ,2.5,x, X ,,ignored\n")
    assert list(Stores.load(path)) == [Store("x", "X", 1.5, 2.5, "")]


# --- inventory ---

def test_inventory_loads_the_pack_file():
    inventory = Inventory.load(PACK / "inventory.csv")
    with open(PACK / "inventory.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(inventory) == len(rows)
    for row in rows:
        assert inventory.quantity(row["store_id"], row["product_id"]) == int(row["quantity"])
    expected = {r["store_id"] for r in rows
                if r["product_id"] == "suv-x" and int(r["quantity"]) >= 2}
    assert inventory.stores_with("suv-x", 2) == expected
    assert inventory.quantity("paris-15", "suv-x") == 3


def test_inventory_quantities_and_updates():
    inventory = Inventory([("s1", "p", 2), ("s2", "p", 0), ("s3", "p", 5), ("s1", "q", 1)])
    assert inventory.quantity("s1", "p") == 2
    assert inventory.quantity("s1", "unknown") == 0
    assert inventory.quantity("unknown", "p") == 0
    assert inventory.stores_with("p") == {"s1", "s3"}
    assert inventory.stores_with("p", 3) == {"s3"}
    assert inventory.stores_with("nothing") == set()
    inventory.set("s3", "p", 0)
    inventory.set("s2", "p", 7)
    assert inventory.stores_with("p", 3) == {"s2"}
    with pytest.raises(ValueError):
        inventory.set("s1", "p", -1)


def test_inventory_apply_records_from_the_topic():
    inventory = Inventory()
    assert inventory.apply({"store_id": "s1", "product_id": "p", "quantity": 4}) is True
    assert inventory.apply({"store_id": "s2", "product_id": "p", "quantity": "2"}) is True
    assert inventory.apply({"store_id": "s3", "product_id": "p", "quantity": 3.0}) is True
    assert inventory.quantity("s1", "p") == 4 and inventory.quantity("s2", "p") == 2
    assert inventory.quantity("s3", "p") == 3
    bad = [None, "text", {}, {"store_id": "s1", "product_id": "p"},
           {"store_id": "s1", "product_id": "p", "quantity": -1},
           {"store_id": "s1", "product_id": "p", "quantity": 1.5},
           {"store_id": "s1", "product_id": "p", "quantity": True},
           {"store_id": "s1", "product_id": "p", "quantity": "many"},
           {"store_id": "", "product_id": "p", "quantity": 1},
           {"store_id": "s1", "product_id": 7, "quantity": 1}]
    for record in bad:
        assert inventory.apply(record) is False, record
    assert inventory.quantity("s1", "p") == 4  # unchanged by the bad records
    assert inventory.apply({"store_id": "s1", "product_id": "p", "quantity": 0}) is True
    assert inventory.stores_with("p") == {"s2", "s3"}


def test_inventory_load_reports_every_bad_row(tmp_path):
    path = _write(tmp_path / "i.csv", "store_id,product_id,quantity\n"
                                      "s1,p,3\n"
                                      "s1,q,lots\n"
                                      "s2,p,-2\n"
                                      "s1,p,4\n"
                                      "s3,,1\n")
    with pytest.raises(ReferenceDataError) as err:
        Inventory.load(path)
    assert err.value.errors == [
        f"{path}:3: quantity 'lots' is not a whole number",
        f"{path}:4: quantity -2 is negative",
        f"{path}:5: store 's1' product 'p' appears twice (first at line 2)",
        f"{path}:6: product_id is empty",
    ]


def test_inventory_load_missing_file_and_column(tmp_path):
    with pytest.raises(ReferenceDataError) as err:
        Inventory.load(tmp_path / "none.csv")
    assert str(err.value) == f"{tmp_path / 'none.csv'}: no such file"
    path = _write(tmp_path / "i.csv", "store_id,product_id\ns1,p\n")
    with pytest.raises(ReferenceDataError, match=r"i\.csv:1: missing column quantity"):
        Inventory.load(path)
