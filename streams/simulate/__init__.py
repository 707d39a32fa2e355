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

Modules, none importing another in a cycle, no private name used outside its module:

- `martin`: the worked example;
- `population`: the synthetic population (plans, people, the merge of their journeys), built on
  `person` (a person and their devices, drawn from a seed), `touchpoints` (the builder of one
  person's raw events) and `journey` (how many sessions, when, how each starts, on which device),
  whose sessions are `web_sessions` (entry and landing page), `browsing` (on-site browsing, lead,
  online order) and `app_and_store` (app, geofence, store visits, the till);
- `catalogue` (stores, markets, products, names, user agents, weight tables), `channels`
  (publishers, campaigns, session entries, the daily traffic curve), `clock` (time base and ISO
  8601 formatting);
- `malformed` (bad records) and `io` (JSONL file, Kafka producer and its key rule).
"""
from __future__ import annotations

# CURRENCY, SITE, MARTIN_QUIET_HOURS and `partition_key` (the Kafka key rule of `produce`, used by
# tests and benchmarks) stay importable from here, outside `__all__`.
from streams.simulate.catalogue import CURRENCY, SITE  # noqa: F401
from streams.simulate.clock import event_ms, in_time_order  # noqa: F401
from streams.simulate.io import partition_key, produce, write_jsonl  # noqa: F401
from streams.simulate.malformed import MALFORMED_KINDS, malformed_events
from streams.simulate.martin import (
    MARTIN_EMAIL,
    MARTIN_IDS,
    MARTIN_QUIET_HOURS,  # noqa: F401
    MARTIN_STORE,
    OFFER_CODE,
    martin_journey,
)
from streams.simulate.population import Population

__all__ = [
    "MALFORMED_KINDS",
    "MARTIN_EMAIL",
    "MARTIN_IDS",
    "MARTIN_STORE",
    "OFFER_CODE",
    "Population",
    "malformed_events",
    "martin_journey",
    "in_time_order",
    "event_ms",
    "produce",
    "write_jsonl",
]

