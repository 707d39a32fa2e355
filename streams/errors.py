"""Every expected failure of parcours derives from `ParcoursError`.

An expected failure is one an operator or a producer can cause and fix: a bad setting, a bad input
record, a service that is down or not keeping up. Its message is one readable line (a service that
failed to start may add the lines of its log that say why: `BrokerStartError`), so the CLI prints
`parcours: error: <message>` and exits 2 for any of them (streams/cli/main.py), and the worker
turns an input error into a dead letter with its reason. Anything else is a bug and keeps its
traceback.

The three kinds, each also a subclass of the builtin it used to be, so `except ValueError` callers
keep working:

- `ConfigError` (ValueError): a setting, URL, rule pack, reference file or flag is wrong.
- `InputError`: a record cannot become a touchpoint (`schemas.codec.DecodeError` and its kinds).
- `ServiceError` (RuntimeError): Kafka, ClickHouse or the embedded broker refused or failed.
  `BackpressureError` (sinks/writer.py) is the one that says "try again later".

The concrete classes live with the code that raises them: `KafkaSecurityError`
(streams/kafka/security.py), `SinkConfigError` (sinks/clickhouse.py), `RulePackError`
(streams/moments/rules/yaml_reader.py), `ReferenceDataError` (streams/moments/reference.py),
`PublishError` and `ReportError` (streams/cli/), `DecodeError` (schemas/codec.py), `SinkError`
(sinks/writer.py), `BrokerStartError` (streams/embedded/broker.py), `UnknownSchema` and
`IncompatibleSchema` (schemas/registry.py).
"""
from __future__ import annotations

__all__ = ["ConfigError", "InputError", "ParcoursError", "ServiceError"]


class ParcoursError(Exception):
    """An expected failure; its message is one line for the person who can fix it."""


class ConfigError(ParcoursError, ValueError):
    """A setting is missing or malformed; the message is one line for the operator."""


class InputError(ParcoursError):
    """A record that cannot be processed as it is; it becomes a dead letter with its reason."""


class ServiceError(ParcoursError, RuntimeError):
    """A service parcours depends on (Kafka, ClickHouse, the embedded broker) failed."""
