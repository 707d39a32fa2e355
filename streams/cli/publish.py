"""`parcours publish`: reference data to the worker's topics, checked before anything is sent.

inventory: a `store_id,product_id,quantity` CSV -> the compacted `reference.inventory` topic, one
record per store and product (key `store_id|product_id`); preferences: preference-centre records
(JSON lines, `streams/preferences/records.py`) -> the `preferences` topic. A bad file stops with
one line naming the file (and line) and sends nothing; then the broker is checked and the records
sent.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from streams import config
from streams.cli.common import CliError, check_kafka
from streams.errors import ConfigError
from streams.kafka.clients import KafkaClients
from streams.moments.feeds import inventory_key
from streams.moments.reference import Inventory, ReferenceDataError


class PublishError(ConfigError):
    """A file that cannot be published; the message is one line."""


def _inventory_records(path: Path) -> list[tuple[bytes | None, bytes]]:
    try:
        inventory = Inventory.load(path)
    except ReferenceDataError as exc:
        raise PublishError(f"publish: {str(exc).splitlines()[0]}") from None
    return [(inventory_key(store_id, product_id),
             orjson.dumps({"store_id": store_id, "product_id": product_id, "quantity": quantity}))
            for store_id, product_id, quantity in inventory.rows()]


def _preference_records(path: Path) -> list[tuple[bytes | None, bytes]]:
    from streams.preferences.records import preference_touchpoint  # brings the codecs: lazily

    records = []
    for number, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            preference_touchpoint(orjson.loads(line))
        except (orjson.JSONDecodeError, ValueError) as exc:
            raise PublishError(f"publish: {path}:{number}: {exc}") from None
        records.append((None, line))
    return records


def read_records(what: str, path: Path,
                 topics) -> tuple[list[tuple[bytes | None, bytes]], str]:
    """(the records of the file, the topic they go to); PublishError for a bad file."""
    if not path.is_file():
        raise PublishError(f"publish: no such file: {path}")
    if what == "inventory":
        return _inventory_records(path), topics.inventory
    return _preference_records(path), topics.preferences


async def send(clients: KafkaClients, topic: str, records: list) -> None:
    """Send `(key, value)` records to `topic`; return when the broker has them all."""
    producer = clients.producer(linger_ms=5)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def add_parser(sub) -> None:
    p = sub.add_parser("publish",
                       help="reference data to the worker: inventory CSV or preference records")
    p.add_argument("what", choices=("inventory", "preferences"))
    p.add_argument("file",
                   help="inventory: store_id,product_id,quantity CSV; preferences: JSON lines")
    p.add_argument("--kafka", default=None, help="Kafka URL (default PARCOURS_KAFKA_URL)")
    p.set_defaults(func=run)


def run(args) -> int:
    """Reference data to the worker's topics: inventory (CSV) or preference records (JSONL)."""
    settings = config.load(kafka_url=args.kafka or None)
    try:
        records, topic = read_records(args.what, Path(args.file), settings.topics)
    except PublishError as exc:
        raise CliError(str(exc)) from None
    clients = KafkaClients.of(settings)
    asyncio.run(check_kafka(clients))
    asyncio.run(send(clients, topic, records))
    print(f"published {len(records)} {args.what} records to {topic} on {settings.kafka_bootstrap}")
    return 0
