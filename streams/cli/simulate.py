"""`parcours simulate`: synthetic journeys (with the Martin journey) to a JSON-lines file or Kafka.

The events are generated as a stream in time order (streams/simulate/), so memory stays flat
however many profiles are asked for.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

from streams import config
from streams.cli.common import CliError


def add_parser(sub) -> None:
    p = sub.add_parser("simulate",
                       help="synthetic journeys (with the Martin journey) to a file or Kafka")
    p.add_argument("--profiles", type=int, default=1000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--start", default=None, help="first day, ISO 8601 (default 2026-11-02)")
    p.add_argument("--out", default=None)
    p.add_argument("--kafka", nargs="?", const="", default=None,
                   help="produce to Kafka (URL, default PARCOURS_KAFKA_URL)")
    p.add_argument("--no-martin", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    from streams import simulate
    from streams.kafka.clients import KafkaClients

    try:
        start = datetime.fromisoformat(args.start) if args.start else datetime(2026, 11, 2)
    except ValueError:
        raise CliError(f"simulate: --start {args.start!r} is not a date "
                       "(YYYY-MM-DD or ISO 8601)") from None
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
        topic = settings.topics.touchpoints
        n = asyncio.run(simulate.produce(events, KafkaClients.of(settings), topic))
        print(f"produced {n} touchpoints to {topic} on {settings.kafka_bootstrap}")
    else:
        if not args.out:
            raise CliError("simulate: give --out FILE.jsonl or --kafka [URL]")
        n = simulate.write_jsonl(events, Path(args.out))
        print(f"wrote {n} touchpoints to {args.out}")
    return 0
