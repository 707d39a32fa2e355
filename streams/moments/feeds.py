"""The inventory feed from Kafka (`reference.inventory`, compacted): the stock the in-store rules
read.

Pure functions; the worker's follower (streams/worker/followers.py) and `parcours publish` call
them.
Key `store_id|product_id`, value `{"store_id": ..., "product_id": ..., "quantity": N}`; a tombstone
(null value) means none left.
"""
from __future__ import annotations

import orjson


def inventory_key(store_id: str, product_id: str) -> bytes:
    return f"{store_id}|{product_id}".encode()


def apply_inventory(inventory, key: bytes | None, value: bytes | None) -> bool:
    """Apply one record of the inventory topic; False when it is unreadable (then ignored)."""
    if value is None:
        if not key or b"|" not in key:
            return False
        store_id, _, product_id = key.decode(errors="replace").partition("|")
        inventory.set(store_id, product_id, 0)
        return True
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError:
        return False
    return inventory.apply(record)
