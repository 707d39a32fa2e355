"""Every Kafka client parcours opens is built here, with the connection's security options.

`KafkaClients(bootstrap, security)` is one connection: the brokers and their TLS / SASL settings
(streams/kafka/security.py). Its `consumer`, `producer` and `admin` build aiokafka's clients, and
`faust_broker` gives the Faust app the same connection, so the worker's Faust consumer, its batch
producer, the CLI and the simulator all connect alike: a client built from
`KafkaClients.of(settings)` cannot forget the security options (`KafkaClients.at(brokers)` is
PLAINTEXT, for the embedded broker and tests; production code starts from the settings). aiokafka
is imported when a client is built: this module stays importable without it.

    clients = KafkaClients.of(settings)          # from the environment (streams.config)
    producer = clients.producer(linger_ms=5)     # any aiokafka keyword argument passes through
    KafkaClients.at(kafka.bootstrap)             # brokers alone: PLAINTEXT (the embedded broker)

The helpers that take "a connection" (`IngestConsumer`, `BatchProducer`, `create_topics`,
`true_end_offsets`, `count_until`, ...) accept a `KafkaClients` or the brokers alone (`at`).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streams.kafka.security import KafkaSecurity

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

SCHEMES = ("kafka://", "aiokafka://")


def bootstrap_of(url: str) -> str:
    """`kafka://h1:9092,h2:9092/` or `h1:9092,h2:9092` -> `h1:9092,h2:9092`."""
    servers = url.strip()
    for scheme in SCHEMES:
        if servers.startswith(scheme):
            servers = servers[len(scheme):]
    return servers.rstrip("/")


@dataclass(frozen=True)
class KafkaClients:
    """One Kafka connection: the bootstrap servers and the security every client of it uses."""

    bootstrap: str
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    def __post_init__(self):
        object.__setattr__(self, "bootstrap", bootstrap_of(self.bootstrap))

    @classmethod
    def of(cls, settings: Any) -> "KafkaClients":
        """The connection of a `streams.config.Settings` (PARCOURS_KAFKA_URL and its security)."""
        return cls(settings.kafka_bootstrap, settings.kafka_security)

    @classmethod
    def at(cls, target: "str | Iterable[str] | KafkaClients") -> "KafkaClients":
        """`target` as a connection: a `KafkaClients` as it is; brokers (`h1:9092,h2:9092`, a
        `kafka://` URL or a list of `host:port`) as a PLAINTEXT one, as the embedded broker is."""
        if isinstance(target, KafkaClients):
            return target
        return cls(target if isinstance(target, str) else ",".join(target))

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def options(self, **overrides: Any) -> dict:
        """aiokafka keyword arguments: the brokers, the security options, then `overrides`."""
        return {"bootstrap_servers": self.bootstrap, **self.security.client_options(), **overrides}

    def consumer(self, *topics: str, **kwargs: Any) -> "AIOKafkaConsumer":
        from aiokafka import AIOKafkaConsumer

        return AIOKafkaConsumer(*topics, **self.options(**kwargs))

    def producer(self, **kwargs: Any) -> "AIOKafkaProducer":
        """A plain at-least-once producer by default: Tansu has no idempotent producer."""
        from aiokafka import AIOKafkaProducer

        return AIOKafkaProducer(**self.options(**kwargs))

    def admin(self, **kwargs: Any) -> "AIOKafkaAdminClient":
        from aiokafka.admin import AIOKafkaAdminClient

        return AIOKafkaAdminClient(**self.options(**kwargs))

    def faust_broker(self) -> dict:
        """`faust.App` keyword arguments for this connection: `broker` and `broker_credentials`."""
        return {"broker": self.url, "broker_credentials": self.security.faust_credentials()}
