"""Event predicates compiled to plain closures, with the reference-data joins (geofence, stock).

`compile_predicate(pred, refs)` returns a `Matcher`: call it with a stitched touchpoint and the
person's last known position; it returns the bindings the predicate adds (e.g. {"store_id": ...},
possibly empty) when the event matches, else None. Field paths are "type", "channel", "campaign",
"publisher", "event_id", or "properties.NAME" / "context.NAME" / "ids.NAME".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from streams.moments.rules.model import Condition, Predicate

Getter = Callable[[dict], Any]


def field_getter(path: str) -> Getter:
    head, dot, name = path.partition(".")
    if not dot:
        return lambda tp: tp.get(head)

    def get(tp: dict) -> Any:
        section = tp.get(head)
        return section.get(name) if isinstance(section, dict) else None
    return get


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _test(op: str, value: Any) -> Callable[[Any], bool]:
    if op == "eq":
        return lambda v: v == value and not isinstance(v, bool)
    if op == "ne":
        return lambda v: v != value
    if op in ("in", "not_in"):
        members = frozenset(value)
        if op == "in":
            return lambda v: isinstance(v, (str, int, float)) and v in members
        return lambda v: not (isinstance(v, (str, int, float)) and v in members)
    if op == "gt":
        return lambda v: _number(v) and v > value
    if op == "gte":
        return lambda v: _number(v) and v >= value
    if op == "lt":
        return lambda v: _number(v) and v < value
    if op == "lte":
        return lambda v: _number(v) and v <= value
    if op == "exists":
        return (lambda v: v is not None and v != "") if value else (lambda v: v is None or v == "")
    if op == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(value)
    if op == "contains":
        return lambda v: isinstance(v, str) and value in v
    raise ValueError(f"unknown operator {op!r}")


def _bool_eq(value: bool) -> Callable[[Any], bool]:
    return lambda v: v is value  # true/false never equal 1/0 here


def value_test(op: str, value: Any) -> Callable[[Any], bool]:
    """The test `op value` on one value, as rule conditions apply it (true/false equal only
    themselves)."""
    return _bool_eq(value) if op == "eq" and isinstance(value, bool) else _test(op, value)


def _condition(cond: Condition) -> Callable[[dict], bool]:
    get = field_getter(cond.field)
    test = value_test(cond.op, cond.value)
    return lambda tp: test(get(tp))


def _position(tp: dict) -> tuple[float, float] | None:
    ctx = tp.get("context")
    if not isinstance(ctx, dict):
        return None
    lat, lon = ctx.get("lat"), ctx.get("lon")
    if _number(lat) and _number(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
        return float(lat), float(lon)
    return None


@dataclass
class Matcher:
    """A compiled predicate. `types` is the set of event types it can match (None: any type), used
    by the engine to look rules up by event type."""

    types: frozenset | None
    call: Callable[[dict, Any], dict | None]

    def __call__(self, tp: dict, last_position: Any = None) -> dict | None:
        return self.call(tp, last_position)


def compile_predicate(pred: Predicate, refs) -> Matcher:
    """`refs` has `.stores` (reference.Stores or None) and `.inventory` (reference.Inventory or
    None)."""
    types: frozenset | None = None
    tests = []
    for cond in pred.conditions:
        if cond.field == "type" and cond.op in ("eq", "in"):
            allowed = frozenset([cond.value] if cond.op == "eq" else cond.value)
            types = allowed if types is None else types & allowed
        tests.append(_condition(cond))
    geofence, stock = pred.geofence, pred.in_stock
    if (geofence or (stock and stock.store == "nearest")) and getattr(refs, "stores", None) is None:
        raise ValueError("a geofence or a nearest-store stock join needs a store list "
                         "(reference.stores)")
    if stock and getattr(refs, "inventory", None) is None:
        raise ValueError("an in_stock join needs an inventory (reference.inventory)")
    stores = getattr(refs, "stores", None)
    inventory = getattr(refs, "inventory", None)
    fence_ids = frozenset(geofence.stores) if geofence and geofence.stores else None
    product_of = field_getter(stock.product) if stock else None

    def call(tp: dict, last_position: Any) -> dict | None:
        for test in tests:
            if not test(tp):
                return None
        bound: dict = {}
        if geofence is not None:
            pos = _position(tp)
            if pos is None:
                return None
            near = [s for d, s in stores.within(pos[0], pos[1], geofence.within_m)
                    if fence_ids is None or s.id in fence_ids]
            if not near:
                return None
            bound["store_id"] = near[0].id
        if stock is not None:
            product = product_of(tp)
            if not isinstance(product, str) or not product:
                return None
            if stock.store == "event":
                ctx = tp.get("context") or {}
                store_id = bound.get("store_id") or ctx.get("store_id")
                if not store_id or inventory.quantity(store_id, product) < stock.min_quantity:
                    return None
                bound["store_id"] = store_id
            else:
                pos = _position(tp) or (tuple(last_position[:2]) if last_position else None)
                if pos is None:
                    return None
                for _d, store in stores.within(pos[0], pos[1], stock.within_km * 1000.0):
                    if inventory.quantity(store.id, product) >= stock.min_quantity:
                        bound["store_id"] = store.id
                        break
                else:
                    return None
        return bound

    return Matcher(types=types, call=call)
