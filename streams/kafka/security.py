"""Kafka connection security from the environment: TLS and SASL for every client parcours opens.

| variable | meaning |
|---|---|
| PARCOURS_KAFKA_SECURITY_PROTOCOL | PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL |
| PARCOURS_KAFKA_SASL_MECHANISM | PLAIN (default with SASL), SCRAM-SHA-256 or SCRAM-SHA-512 |
| PARCOURS_KAFKA_USERNAME, PARCOURS_KAFKA_PASSWORD | SASL credentials (required with SASL) |
| PARCOURS_KAFKA_CA_FILE | CA bundle to verify the brokers (default: the system's) |
| PARCOURS_KAFKA_CERT_FILE, PARCOURS_KAFKA_KEY_FILE | client certificate (mutual TLS) |

`client_options()` are the keyword arguments of aiokafka's clients (producer, consumer, admin);
`faust_credentials()` is the Faust app's `broker_credentials`. Both describe the same connection,
so the worker's Faust consumer, its batch producer and the CLI's clients all connect alike.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from streams.errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaSecurityError(ConfigError):
    """A security setting is wrong; the message is one line naming the variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str = "PLAIN"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # kept out of logs
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """Built once (it reads the CA, certificate and key files); every client shares it."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_options(self) -> dict:
        """Keyword arguments for AIOKafkaProducer / AIOKafkaConsumer / AIOKafkaAdminClient."""
        if self.protocol == "PLAINTEXT":
            return {}
        options: dict = {"security_protocol": self.protocol}
        if self.uses_tls:
            options["ssl_context"] = self.ssl_context
        if self.uses_sasl:
            options.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                           sasl_plain_password=self.password)
        return options

    def faust_credentials(self):
        """The Faust app's `broker_credentials` (None for PLAINTEXT)."""
        import faust

        if self.protocol == "PLAINTEXT":
            return None
        if self.uses_sasl:
            return faust.SASLCredentials(username=self.username, password=self.password,
                                         mechanism=self.mechanism, ssl_context=self.ssl_context)
        return faust.SSLCredentials(self.ssl_context)


def from_env(env: dict) -> KafkaSecurity:
    protocol = (env.get("PARCOURS_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(f"PARCOURS_KAFKA_SECURITY_PROTOCOL={protocol!r}: choose one of "
                                 f"{', '.join(PROTOCOLS)}")
    mechanism = (env.get("PARCOURS_KAFKA_SASL_MECHANISM") or "PLAIN").strip().upper()
    if mechanism not in MECHANISMS:
        raise KafkaSecurityError(f"PARCOURS_KAFKA_SASL_MECHANISM={mechanism!r}: choose one of "
                                 f"{', '.join(MECHANISMS)}")
    username = env.get("PARCOURS_KAFKA_USERNAME") or None
    password = env.get("PARCOURS_KAFKA_PASSWORD") or None
    if protocol.startswith("SASL_") and not (username and password):
        raise KafkaSecurityError(f"PARCOURS_KAFKA_SECURITY_PROTOCOL={protocol} needs "
                                 "PARCOURS_KAFKA_USERNAME and PARCOURS_KAFKA_PASSWORD")
    files = {}
    for name in ("CA_FILE", "CERT_FILE", "KEY_FILE"):
        value = env.get(f"PARCOURS_KAFKA_{name}") or None
        if value and not Path(value).is_file():
            raise KafkaSecurityError(f"PARCOURS_KAFKA_{name}={value!r}: no such file")
        files[name.lower()] = value
    if files["key_file"] and not files["cert_file"]:
        raise KafkaSecurityError("PARCOURS_KAFKA_KEY_FILE is set without PARCOURS_KAFKA_CERT_FILE")
    security = KafkaSecurity(protocol, mechanism, username, password, **files)
    if security.uses_tls:
        try:
            security.ssl_context  # noqa: B018 - builds (and caches) it now: a bad file stops here
        except (ssl.SSLError, OSError) as exc:
            raise KafkaSecurityError(
                f"PARCOURS_KAFKA_CA_FILE / CERT_FILE / KEY_FILE: {exc}") from None
    return security
