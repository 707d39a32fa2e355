"""Prometheus metrics of the worker, served on PARCOURS_METRICS_PORT when it is set.

Names are a contract with deploy/ (alerts and the Grafana dashboard): change both together.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_IN = Counter("parcours_events_in", "Records read, by topic", ["topic"])
EVENTS_OUT = Counter("parcours_events_out", "Records sent, by topic", ["topic"])
DEAD_LETTERS = Counter("parcours_dead_letters",
                       "Records sent to the dead-letter topic, by error kind", ["error"])
BATCH_SECONDS = Histogram("parcours_batch_seconds", "Time to process one batch, by stage",
                          ["stage"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PHASE_SECONDS = Histogram("parcours_phase_seconds", "Time spent in each phase of a batch",
                          ["stage", "phase"],
                          buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
BATCH_SIZE = Histogram("parcours_batch_size", "Records per batch, by stage", ["stage"],
                       buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000))
UNREADABLE_BATCHES = Counter("parcours_unreadable_batches",
                             "Record batches a consumer could not read "
                             "(codec library missing, corrupt)", ["topic", "partition"])
SINK_ROWS = Counter("parcours_sink_rows", "Rows written to ClickHouse, by table", ["table"])
SINK_ERRORS = Counter("parcours_sink_errors", "Failed ClickHouse writes, by table", ["table"])
SINK_STALLS = Counter("parcours_sink_stalls",
                      "Sink-stage inserts (or erasures) held because ClickHouse refused them")
SINK_LAG = Gauge("parcours_sink_lag_records",
                 "Sink-topic records not yet written to ClickHouse (high-water mark minus commit)")
SINK_LAG_SECONDS = Gauge("parcours_sink_lag_seconds",
                         "Age of the oldest sink-topic record not yet written to ClickHouse")
SINK_FAILING = Gauge("parcours_sink_failing",
                     "1 while the sink stage's ClickHouse writes fail (it retries), else 0")
SINK_PENDING = Gauge("parcours_sink_pending_rows", "Rows buffered for ClickHouse, by table",
                     ["table"])
SCHEMA_REGISTRY_ERRORS = Counter("parcours_schema_registry_errors",
                                 "Schema-registry requests that failed and were retried (down, "
                                 "timeout, 5xx, 429), by operation", ["operation"])
SCHEMA_REGISTRY_FAILING = Gauge("parcours_schema_registry_failing",
                                "1 while ingest holds a batch waiting for the schema registry "
                                "(its offsets not committed), else 0")
SCHEMA_REGISTRY_WRITERS = Counter("parcours_schema_registry_writers",
                                  "Writer schemas fetched from the registry, by outcome "
                                  "(resolved, refused: incompatible, unknown: no such id)",
                                  ["outcome"])
CONSUMER_LAG = Gauge("parcours_consumer_lag", "High-water mark minus committed position",
                     ["topic", "partition"])
IDENTITY_MERGES = Counter("parcours_identity_merges", "Profiles merged into a survivor")
IDENTITY_REFUSALS = Counter("parcours_identity_refusals", "Links refused by identity rules",
                            ["reason"])
TRIGGERS = Counter("parcours_triggers", "Triggers sent, by rule and channel", ["rule", "channel"])
SUPPRESSIONS = Counter("parcours_suppressions", "Candidate triggers not sent, by reason",
                       ["reason"])
LATE_EVENTS = Counter("parcours_late_events", "Events behind the watermark (moment rules skipped)")
WATERMARK = Gauge("parcours_watermark_seconds",
                  "Event-time watermark of the moments stage (epoch s)")
HELD_EVENTS = Gauge("parcours_held_events",
                    "Touchpoints held until every input partition has passed their event time")
REDELIVERED = Counter("parcours_redelivered",
                      "Records read again after a restart and skipped, already applied: input "
                      "records forwarded twice (kind=input) and stitch messages (kind=stitch)",
                      ["kind"])

CHANGELOG_RECOVERED = Counter("parcours_changelog_recovered",
                              "Changelog records a table read back at recovery (all of them with "
                              "the memory store; the tail after the local state with RocksDB)",
                              ["table"])

SHARD_TRANSFERS = Counter("parcours_shard_transfers",
                          "Merged profiles' states handed between shards, by direction",
                          ["direction"])  # "sent" / "received"
SHARD_CROSS_MERGES = Counter("parcours_shard_cross_merges",
                             "Merges whose absorbed profile lived on another shard")
SHARD_PARKED = Counter("parcours_shard_parked",
                       "Profiles that waited for a hand-off before their next item")
SHARD_PARKED_NOW = Gauge("parcours_shard_parked_profiles",
                         "Profiles waiting for a hand-off now, by shard", ["shard"])
SHARD_PARK_SECONDS = Histogram("parcours_shard_park_seconds",
                               "How long a parked profile waited for its hand-offs",
                               buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                        30, 60))
SHARD_DUPLICATES = Counter("parcours_shard_duplicates",
                           "Journey items and transfers read again and skipped (a restart)")


def serve(port: int | None) -> None:
    """Start the /metrics HTTP endpoint (no-op without a port)."""
    if port:
        start_http_server(port, addr="0.0.0.0")


def refusal_reason(reason: str) -> str:
    """A low-cardinality label from a refusal message ("unique type 'user' ..." -> "unique")."""
    head = reason.split(" ", 1)[0].lower()
    return head if head in ("unique", "max") else "other"
