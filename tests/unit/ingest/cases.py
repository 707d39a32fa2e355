"""Shared ingest test expectations: Martin's hashed ids and the normalised design example."""
from __future__ import annotations

import hashlib

from tests.unit.schemas.test_codec import EXAMPLE

MARTIN_EMAIL_SHA = "38a18406142df500e3834d517458872e74a1f8bf855699043648ae30cf733f21"
MARTIN_PHONE_SHA = hashlib.sha256(b"+33600000000").hexdigest()

EXPECTED_EXAMPLE = {
    "event_id": "e-123",
    "event_time": 1_795_158_900_000,  # 2026-11-20T07:15:00Z
    "type": "price_view",
    "channel": "web",
    "campaign": "winter-suv",
    "publisher": "autonews.example",
    "ids": {"cookie": "c-9", "device": "d-1", "email": MARTIN_EMAIL_SHA, "user": "u-42",
            "loyalty": "L-77", "phone": MARTIN_PHONE_SHA},
    "context": EXAMPLE["context"],
    "properties": {"product_id": "suv-x", "price": 32900.0, "revenue": 0.0, "currency": "EUR",
                   "in_stock": True},
}
