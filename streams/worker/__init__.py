"""The worker: the Faust app around the pure core. It moves batches; the core decides.

Read `app.py` first (`create_app`: the recipe), then `agents.py` (the ingest stage, the sequencer
and shard agents, the followers and timers, in start-up order), `shell.py` (the ingest stage's
batches and idle reports) and `journey.py` (the sequencer's and the shards' batches: the core,
their outputs to Kafka and ClickHouse, their changelog, then the acknowledgement). `tables.py`
holds the state (two Faust tables: the sequencer's, and the shards' with one partition per shard)
and `journal.py` its framed changelog runs; `outputs.py` turns `Emitted` into topic messages and
table rows (replay uses it too), `followers.py` keeps the inventory current, `forget.py` is the
erasure protocol, `metrics.py` the Prometheus metrics and `gc_tuning.py` the collector settings.
"""
