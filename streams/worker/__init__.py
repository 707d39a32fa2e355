"""The worker: the Faust app around the pure core. It moves batches; the core decides.

Read `app.py` first (`create_app`: the recipe), then `agents.py` (the ingest stage, the journey
agent, the followers and timers, in start-up order) and `shell.py` (`Shell`: one batch in, the
pipeline, its outputs to Kafka and ClickHouse, then the acknowledgement). `tables.py` holds the
state (one Faust table per pipeline store), `outputs.py` turns `Emitted` into topic messages and
table rows (replay uses it too), `followers.py` keeps the inventory current, `forget.py` is the
erasure protocol, `metrics.py` the Prometheus metrics and `gc_tuning.py` the collector settings.
"""
