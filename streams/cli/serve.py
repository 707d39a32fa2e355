"""`parcours serve [--host 127.0.0.1] [--port 8080]`: the preference centre (streams/centre/).

It needs PARCOURS_PREFERENCES_SECRET (one line and exit 2 without it), publishes people's
changes to the `preferences` topic on PARCOURS_KAFKA_URL, and reads their current choices and
last messages from PARCOURS_CLICKHOUSE_URL (with chDB, a directory no worker has open: chDB
allows one process per directory). The rule pack (PARCOURS_RULES) gives the defaults shown to
someone who made no choice and the rules' descriptions ("you received this because ...").
With PARCOURS_METRICS_PORT, its metrics are served there (never on the public port).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal

from streams import config
from streams.cli.common import check_kafka, load_rules, open_clickhouse
from streams.kafka.clients import KafkaClients


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="the preference centre: a page and an API behind signed "
                                     "links")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--clickhouse", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from streams.centre import settings as centre_settings

    secret = centre_settings.secret(os.environ)
    public_url = centre_settings.public_url(os.environ)
    offered = centre_settings.topics_offered(os.environ)
    settings = config.load(**({"clickhouse_url": args.clickhouse} if args.clickhouse else {}))
    rules = load_rules(settings.rules_file)
    clients = KafkaClients.of(settings)
    asyncio.run(check_kafka(clients))
    client = open_clickhouse(settings.clickhouse_url)
    asyncio.run(_serve(args, settings, rules, clients, client, secret, public_url, offered))
    return 0


async def _serve(args, settings, rules, clients, client, secret, public_url, offered) -> None:
    from aiohttp import web

    from streams.centre.app import Centre, CentreAccessLogger, make_app
    from streams.centre.choices import defaults
    from streams.centre.state import PersonReader
    from streams.kafka.producer import BatchProducer
    from streams.preferences.config import GateConfig

    producer = BatchProducer(clients, client_id=f"{settings.app_id}-preference-centre")
    await producer.start()
    descriptions = {rule.id: rule.description for rule in rules.rules if rule.description}
    centre = Centre(secret=secret, publish=producer.send_all,
                    reader=PersonReader(client, descriptions),
                    defaults=defaults(GateConfig.from_dict(rules.preferences)),
                    topic=settings.topics.preferences, topics_offered=offered,
                    public_url=public_url)
    runner = web.AppRunner(make_app(centre), access_log_class=CentreAccessLogger,
                           access_log=logging.getLogger("parcours.centre.access"))
    await runner.setup()
    try:
        await web.TCPSite(runner, args.host, args.port).start()
    except OSError as exc:
        await runner.cleanup()
        await producer.stop()
        from streams.cli.common import CliError

        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    if settings.metrics_port:  # PARCOURS_METRICS_PORT: streams/centre/metrics.py
        from prometheus_client import start_http_server

        start_http_server(settings.metrics_port, addr="0.0.0.0")
    print(f"preference centre on http://{args.host}:{args.port} (links under {public_url})",
          flush=True)
    stopped = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # a clean stop: the producer flushes
        asyncio.get_running_loop().add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()
        await producer.stop()
