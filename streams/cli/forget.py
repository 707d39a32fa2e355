"""`parcours forget --identifier TYPE:VALUE`: right to erasure, through the running worker.

The identifier is hashed as the identity graph keys it; the request and the wait for the worker's
confirmation are the worker's protocol (streams/worker/forget.py). Prints what was erased.
"""
from __future__ import annotations

import asyncio

from streams import config
from streams.cli.common import CliError, check_kafka
from streams.kafka.clients import KafkaClients


def add_parser(sub) -> None:
    p = sub.add_parser("forget",
                       help="right to erasure: remove the whole profile holding an identifier")
    p.add_argument("--identifier", required=True, help="TYPE:VALUE, e.g. email:martin@example.com")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for the worker's confirmation (0: do not wait)")
    p.set_defaults(func=run)


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


def run(args) -> int:
    from streams.worker.forget import request_forget

    identifier = parse_identifier(args.identifier)
    settings = config.load()
    clients = KafkaClients.of(settings)
    asyncio.run(check_kafka(clients))
    event = asyncio.run(request_forget(clients, settings.topics, identifier, args.wait))
    kind, hashed = identifier.split(":", 1)
    if event is None:
        print(f"erasure of {kind} queued on {settings.topics.stitch}")
    elif not event["survivor"]:
        print(f"no profile holds {args.identifier.split(':')[0]} {hashed[:16]}…: nothing to erase")
    else:
        rows = sum((event.get("erased") or {}).values())
        print(f"erased profile {event['survivor']} and its {len(event['identifiers'])} identifiers "
              f"(state, {rows} ClickHouse rows, tombstones on {settings.topics.identity})")
    return 0
