"""The preference centre's Prometheus metrics: labelled by route, status and reason only, never
by anything that names a person."""
from __future__ import annotations

from prometheus_client import Counter

__all__ = ["REFUSED", "REQUESTS", "SAVES"]

REQUESTS = Counter("parcours_preference_centre_requests_total",
                   "Preference-centre requests, by route and HTTP status", ["route", "status"])
REFUSED = Counter("parcours_preference_centre_refusals_total",
                  "Requests refused, by reason: missing, malformed, signature, expired, csrf, "
                  "form, rate_address, rate_link", ["reason"])
SAVES = Counter("parcours_preference_centre_saves_total",
                "Saves of a person's choices, by outcome: saved or failed", ["outcome"])
