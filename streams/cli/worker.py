"""`parcours worker`: the Faust worker on PARCOURS_KAFKA_URL / PARCOURS_CLICKHOUSE_URL.

The rule pack, the broker and ClickHouse are checked first, each failing in one line (and, with
PARCOURS_OUTPUT_FORMAT=avro and a schema registry, the output schemas registered:
streams/worker/output_schemas.py); then the app (streams/worker/app.py) runs until stopped.
"""
from __future__ import annotations

import asyncio
import os

from streams import config
from streams.cli.common import check_kafka, load_rules, open_sink
from streams.kafka.clients import KafkaClients
from streams.worker import gc_tuning


def add_parser(sub) -> None:
    p = sub.add_parser("worker",
                       help="the Faust worker on PARCOURS_KAFKA_URL / PARCOURS_CLICKHOUSE_URL")
    p.set_defaults(func=run)


def run(args) -> int:
    settings = config.load()
    gc_tuning.tune()
    rules = load_rules(settings.rules_file)
    asyncio.run(check_kafka(KafkaClients.of(settings)))
    # the sink stage retries a refused insert itself (backoff, for as long as it takes, its lag
    # reported meanwhile): each attempt fails fast; its inserts are as large as its batches
    rows = settings.sink_batch_rows
    # PARCOURS_SINK_STAGE=off: another worker writes ClickHouse (one chDB directory, one process)
    sink = open_sink(settings.clickhouse_url, max_attempts=1, max_rows=rows,
                     max_pending=max(200_000, 4 * rows)) if settings.sink_stage else None
    from faust import Worker

    from streams.worker import metrics
    from streams.worker.app import create_app, trigger_channels
    from streams.worker.output_schemas import output_encoder

    try:
        encoder = output_encoder(settings, trigger_channels(rules))
    except BaseException:
        if sink is not None:
            sink.close()
        raise
    app, _shell = create_app(settings, sink=sink, rules=rules, encoder=encoder)
    metrics.serve(settings.metrics_port)
    level = os.environ.get("PARCOURS_LOG_LEVEL", "info")
    try:
        Worker(app, loglevel=level, quiet=True).execute_from_commandline()
    finally:
        if sink is not None:
            sink.close()
    return 0
