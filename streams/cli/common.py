"""What the commands share: `CliError`, the rule pack, the broker check, ClickHouse (migrated) and
the charts' figures.

Every expected failure is a `ParcoursError` (streams/errors.py): `main` prints it as one line,
`parcours: error: ...`, and exits 2.
"""
from __future__ import annotations

import asyncio
import logging

from streams.errors import ParcoursError
from streams.kafka.clients import KafkaClients


class CliError(ParcoursError):
    """A user-facing failure: printed as one line."""


def load_rules(path: str | None):
    """The rule pack at `path` (default: the shipped pack), or one readable line on failure."""
    from streams.moments.reference import ReferenceDataError
    from streams.moments.rules.loader import RulePackError, load_default, load_pack

    try:
        return load_pack(path) if path else load_default()
    except RulePackError as exc:
        first = exc.errors[0] if exc.errors else exc
        more = f" (+{len(exc.errors) - 1} more)" if len(exc.errors) > 1 else ""
        raise CliError(f"rules: {first}{more}; run: parcours rules check {path}") from None
    except (ReferenceDataError, OSError) as exc:
        raise CliError(f"rules: {exc}") from None


async def check_kafka(clients: KafkaClients, timeout: float = 15.0) -> None:
    """Fail fast with one line when no broker answers, instead of Faust retrying forever."""
    admin = clients.admin(request_timeout_ms=int(timeout * 1000))
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the one-line error below says it all
    try:
        await asyncio.wait_for(admin.start(), timeout)
    except Exception as exc:
        raise CliError(f"cannot reach Kafka at {clients.bootstrap}: "
                       f"{str(exc) or type(exc).__name__}") from None
    finally:
        quiet.setLevel(level)
        try:
            await admin.close()
        except Exception:
            pass


def open_clickhouse(url: str):
    """A ClickHouse client of `url`, its tables migrated."""
    from sinks.clickhouse import connect
    from sinks.migrations import migrate

    client = connect(url)
    migrate(client)
    return client


def open_sink(url: str, **options):
    """The ClickHouse sink of `url` (tables migrated); the caller closes it. `options` go to
    every table's writer (sinks/writer.py)."""
    from sinks.writer import ClickHouseSink

    return ClickHouseSink(open_clickhouse(url), **options)


def figure(width: float, height: float):
    """A matplotlib (figure, axes), drawn off-screen (the Agg backend: no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def save_figure(fig, path):
    """Lay `fig` out, write it to `path` (a Path; its folder made), free it; returns `path`."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
