"""The `parcours` command. Every expected failure ends in one line on stderr and exit code 2."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from streams.errors import ParcoursError
from streams import config
from streams.worker import gc_tuning

log = logging.getLogger("parcours")


class CliError(ParcoursError):
    """A user-facing failure: printed as one line."""


def _open_sink(url: str):
    from sinks.clickhouse import connect
    from sinks.migrations import migrate
    from sinks.writer import ClickHouseSink

    client = connect(url)
    migrate(client)
    return ClickHouseSink(client)


def _client(url: str):
    from sinks.clickhouse import connect
    from sinks.migrations import migrate

    client = connect(url)
    migrate(client)
    return client


async def check_kafka(bootstrap: str, timeout: float = 15.0, options: dict | None = None) -> None:
    """Fail fast with one line when no broker answers, instead of Faust retrying forever."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000),
                                **(options or {}))
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the one-line error below says it all
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except Exception as exc:
        raise CliError(f"cannot reach Kafka at {bootstrap}: {str(exc) or type(exc).__name__}") from None
    finally:
        quiet.setLevel(level)
        try:
            await admin.close()
        except Exception:
            pass


def load_rules(path: str | None):
    """The rule pack at `path` (default: the shipped pack), or one readable line on failure."""
    from streams.moments.rules.loader import RulePackError, load_default, load_pack
    from streams.moments.reference import ReferenceDataError

    try:
        return load_pack(path) if path else load_default()
    except RulePackError as exc:
        first = exc.errors[0] if exc.errors else exc
        more = f" (+{len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        raise CliError(f"rules: {first}{more}; run: parcours rules check {path}") from None
    except (ReferenceDataError, OSError) as exc:
        raise CliError(f"rules: {exc}") from None


def cmd_rules_check(args) -> int:
    from streams.moments.rules.loader import check_main

    return check_main(args.file)


def cmd_worker(args) -> int:
    settings = config.load()
    gc_tuning.tune()
    rules = load_rules(settings.rules_file)
    asyncio.run(check_kafka(settings.kafka_bootstrap, options=settings.kafka_options))
    sink = _open_sink(settings.clickhouse_url)
    from faust import Worker

    from streams.worker import metrics
    from streams.worker.app import create_app

    app, _shell = create_app(settings, sink=sink, rules=rules)
    metrics.serve(settings.metrics_port)
    level = os.environ.get("PARCOURS_LOG_LEVEL", "info")
    try:
        Worker(app, loglevel=level, quiet=True).execute_from_commandline()
    finally:
        sink.close()
    return 0


def cmd_replay(args) -> int:
    from streams.cli.replay import replay

    path = Path(args.file)
    if not path.is_file():
        raise CliError(f"replay: no such file: {path}")
    if args.preferences and not Path(args.preferences).is_file():
        raise CliError(f"replay: no such file: {args.preferences}")
    settings = config.load(clickhouse_url=args.clickhouse)
    gc_tuning.tune()
    from streams.pipeline import Pipeline

    pipeline = Pipeline(rules=load_rules(args.rules or settings.rules_file),
                        attribution_config=config.attribution_config(settings))
    sink = _open_sink(settings.clickhouse_url)
    try:
        result = replay(path, Path(args.out), sink=sink, batch_size=args.batch_size, pipeline=pipeline,
                        preferences=Path(args.preferences) if args.preferences else None,
                        max_future_ms=settings.max_future_ms)
    finally:
        sink.close()
    rate = result.lines / result.seconds if result.seconds else 0.0
    print(f"replayed {result.lines} lines in {result.seconds:.2f} s ({rate:,.0f}/s): "
          f"{result.accepted} accepted, {result.dead_lettered} dead-lettered, "
          f"{result.counts.get('credits', 0)} credit rows, "
          f"{result.counts.get('identity', 0)} identity events, "
          f"{result.counts.get('triggers', 0)} triggers, "
          f"{result.counts.get('suppressions', 0)} suppressions, "
          f"{result.counts.get('late', 0)} late events -> {args.out}/")
    return 0


def cmd_simulate(args) -> int:
    from datetime import datetime, timezone

    from streams import simulate

    try:
        start = datetime.fromisoformat(args.start) if args.start else datetime(2026, 11, 2)
    except ValueError:
        raise CliError(f"simulate: --start {args.start!r} is not a date (YYYY-MM-DD or ISO 8601)") from None
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if args.profiles < 1:
        raise CliError(f"simulate: --profiles must be at least 1 (got {args.profiles})")
    population = simulate.Population(profiles=args.profiles, seed=args.seed, start=start)
    # a stream, not a list: memory stays flat however many profiles are asked for
    events = simulate.in_time_order([] if args.no_martin else simulate.martin_journey(start),
                                    population.events())
    if args.kafka is not None:
        settings = config.load(kafka_url=args.kafka or None)
        n = asyncio.run(simulate.produce(events, settings.kafka_bootstrap, settings.topics.touchpoints,
                                         client_options=settings.kafka_options))
        print(f"produced {n} touchpoints to {settings.topics.touchpoints} on {settings.kafka_bootstrap}")
    else:
        if not args.out:
            raise CliError("simulate: give --out FILE.jsonl or --kafka [URL]")
        n = simulate.write_jsonl(events, Path(args.out))
        print(f"wrote {n} touchpoints to {args.out}")
    return 0


def cmd_attribution(args) -> int:
    from streams.attribution import ALL_MODELS
    from streams.cli.attribution import chart, compare, credit_by, render, with_payouts

    if args.pool is not None and args.by != "publisher":
        raise CliError("attribution: --pool pays publishers: use it with --by publisher")
    if args.plot and not args.compare:
        raise CliError("attribution: --plot draws the model comparison: use it with --compare")
    settings = config.load(clickhouse_url=args.clickhouse)
    client = _client(settings.clickhouse_url)
    if args.compare:
        models = list(ALL_MODELS)
        rows = compare(client, models, args.start, args.end)
        print(render(rows, args.format, "channel",
                     title="revenue credited per channel, by model").rstrip("\n"))
        if args.plot:
            print(f"chart: {chart(rows, models, Path(args.plot))}")
        return 0
    rows = credit_by(client, args.model, args.by, args.start, args.end, order=args.order)
    if args.pool is not None:
        rows = with_payouts(rows, args.by, args.pool)
    print(render(rows, args.format, args.by, title=f"credit by {args.by} — {args.model}").rstrip("\n"))
    return 0


def parse_identifier(text: str) -> str:
    """`email:Martin@Example.com` -> `email:<sha256>`: the key the identity graph stores."""
    from streams.ingest.pii import hash_identifier

    kind, sep, value = text.partition(":")
    kind, value = kind.strip().lower(), value.strip()
    if not sep or not kind or not value:
        raise CliError(f"--identifier {text!r}: expected TYPE:VALUE, e.g. email:martin@example.com")
    hashed = hash_identifier(kind, value)
    if not hashed:
        raise CliError(f"--identifier {text!r}: not a valid {kind}")
    return f"{kind}:{hashed}"


async def _request_forget(bootstrap: str, topics, identifier: str, wait: float,
                          options: dict) -> dict | None:
    import time
    import uuid

    import orjson
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from streams.worker.shell import CONTROL

    request_id = f"forget-{uuid.uuid4()}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    try:
        await producer.send_and_wait(topics.stitch, orjson.dumps([{
            CONTROL: "forget", "identifier": identifier, "request_id": request_id,
            "requested_at": int(time.time() * 1000)}]))
    finally:
        await producer.stop()
    if wait <= 0:
        return None
    consumer = AIOKafkaConsumer(topics.identity, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False, **options)
    await consumer.start()
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value and b"forget" in record.value:
                        event = orjson.loads(record.value)
                        if event.get("event_id") == request_id:
                            return event
        raise CliError(f"forget: no worker confirmed the erasure within {wait:.0f} s "
                       f"(request {request_id} is queued on {topics.stitch})")
    finally:
        await consumer.stop()


def cmd_forget(args) -> int:
    identifier = parse_identifier(args.identifier)
    settings = config.load()
    asyncio.run(check_kafka(settings.kafka_bootstrap, options=settings.kafka_options))
    event = asyncio.run(_request_forget(settings.kafka_bootstrap, settings.topics, identifier, args.wait,
                                        settings.kafka_options))
    if event is None:
        print(f"erasure of {identifier.split(':')[0]} queued on {settings.topics.stitch}")
    elif not event["survivor"]:
        print(f"no profile holds {args.identifier.split(':')[0]} {identifier.split(':', 1)[1][:16]}…: nothing to erase")
    else:
        print(f"erased profile {event['survivor']} and its {len(event['identifiers'])} identifiers "
              f"(state, ClickHouse rows, tombstones on {settings.topics.identity})")
    return 0


def cmd_publish(args) -> int:
    """Reference data to the worker's topics: inventory (CSV) or preference records (JSONL)."""
    from streams.cli.publish import PublishError, read_records, send

    settings = config.load(kafka_url=args.kafka or None)
    try:
        records, topic = read_records(args.what, Path(args.file), settings.topics)
    except PublishError as exc:
        raise CliError(str(exc)) from None
    asyncio.run(check_kafka(settings.kafka_bootstrap, options=settings.kafka_options))
    asyncio.run(send(settings.kafka_bootstrap, topic, records, settings.kafka_options))
    print(f"published {len(records)} {args.what} records to {topic} on {settings.kafka_bootstrap}")
    return 0


def cmd_ddl(args) -> int:
    """The ClickHouse DDL: the single-node migrations, or their cluster form."""
    from sinks.cluster import cluster_sql
    from sinks.migrations import single_node_sql

    print(cluster_sql(args.cluster) if args.cluster else single_node_sql(), end="")
    return 0


def cmd_demo(args) -> int:
    from streams.cli.demo import run_demo

    return run_demo(profiles=args.profiles, out_dir=Path(args.out))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parcours", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="embedded broker + worker + chDB: the Martin journey end to end")
    p.add_argument("--profiles", type=int, default=2000)
    p.add_argument("--out", default="out/demo")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("worker", help="the Faust worker on PARCOURS_KAFKA_URL / PARCOURS_CLICKHOUSE_URL")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("replay", help="the same pipeline over a JSON-lines file, no broker")
    p.add_argument("file")
    p.add_argument("--clickhouse", default=None, help="ClickHouse URL (default PARCOURS_CLICKHOUSE_URL)")
    p.add_argument("--out", default="out/replay")
    p.add_argument("--batch-size", type=int, default=5000)
    p.add_argument("--rules", default=None, help="rule pack YAML (default PARCOURS_RULES, else the shipped pack)")
    p.add_argument("--preferences", default=None,
                   help="preference-centre records (JSON lines), applied before the file")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("publish", help="reference data to the worker: inventory CSV or preference records")
    p.add_argument("what", choices=("inventory", "preferences"))
    p.add_argument("file", help="inventory: store_id,product_id,quantity CSV; preferences: JSON lines")
    p.add_argument("--kafka", default=None, help="Kafka URL (default PARCOURS_KAFKA_URL)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("ddl", help="print the ClickHouse DDL (single node, or --cluster NAME)")
    p.add_argument("--cluster", default=None, help="ReplicatedReplacingMergeTree + Distributed, ON CLUSTER NAME")
    p.set_defaults(func=cmd_ddl)

    p = sub.add_parser("rules", help="moment rule packs")
    rules_sub = p.add_subparsers(dest="rules_command", required=True)
    q = rules_sub.add_parser("check", help="validate a rule pack; errors name their line")
    q.add_argument("file")
    q.set_defaults(func=cmd_rules_check)

    p = sub.add_parser("simulate", help="synthetic journeys (with the Martin journey) to a file or Kafka")
    p.add_argument("--profiles", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default=None, help="first day, ISO 8601 (default 2026-11-02)")
    p.add_argument("--out", default=None)
    p.add_argument("--kafka", nargs="?", const="", default=None,
                   help="produce to Kafka (URL, default PARCOURS_KAFKA_URL)")
    p.add_argument("--no-martin", action="store_true")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("forget", help="right to erasure: remove the whole profile holding an identifier")
    p.add_argument("--identifier", required=True, help="TYPE:VALUE, e.g. email:martin@example.com")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for the worker's confirmation (0: do not wait)")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("attribution", help="credit per channel / campaign / publisher")
    p.add_argument("--model", default="last_touch")
    p.add_argument("--from", dest="start", default=None)
    p.add_argument("--to", dest="end", default=None)
    p.add_argument("--by", default="channel")
    p.add_argument("--format", default="table", choices=("table", "json", "csv"))
    p.add_argument("--order", type=int, default=1, help="markov: order of the chain (1 or 2 stored)")
    p.add_argument("--pool", type=float, default=None,
                   help="with --by publisher: commission pool to pay out by share of credited revenue")
    p.add_argument("--compare", action="store_true", help="every model side by side (revenue per channel)")
    p.add_argument("--plot", default=None, help="with --compare: draw the comparison to FILE.png")
    p.add_argument("--clickhouse", default=None)
    p.set_defaults(func=cmd_attribution)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("PARCOURS_LOG_LEVEL", "WARNING").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from sinks.writer import SinkError

    try:
        code = args.func(args)
    except SinkError as exc:  # ClickHouse refused the rows after the writer's retries
        print(f"parcours: error: {str(exc).splitlines()[0][:400]}", file=sys.stderr)
        return 2
    except ParcoursError as exc:  # every expected failure (streams/errors.py)
        print(f"parcours: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code or 0

