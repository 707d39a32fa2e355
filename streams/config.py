"""Settings from the environment, checked once at start.

Every problem is a `ConfigError` whose message is one readable line naming the variable at fault;
the CLI prints it and exits 2 instead of showing a traceback.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from schemas.confluent import settings as registry_settings
from schemas.confluent.settings import RegistrySettings
from streams.errors import ConfigError  # noqa: F401  (streams.config.ConfigError, as before)
from streams.ingest.clock import DEFAULT_MAX_FUTURE_MS
from streams.kafka import security as kafka_security
from streams.kafka.security import KafkaSecurity

DEFAULT_DATA_DIR = ".parcours"
STORES = ("memory", "rocksdb")  # PARCOURS_STORE: where the worker's tables keep their rows
OUTPUT_FORMATS = ("json", "avro")  # PARCOURS_OUTPUT_FORMAT: how the public topics are written


@dataclass(frozen=True)
class Topics:
    """Topic names. `touchpoints` is the public input; the others are parcours' outputs."""

    touchpoints: str = "touchpoints"
    dead_letter: str = "touchpoints.dead-letter"
    stitch: str = "parcours.stitch"  # internal: normalised touchpoints, one ordered partition
    sink: str = "parcours.sink"  # internal: ClickHouse rows and erasures, for the sink stage
    journey: str = "parcours.journey"  # internal: the sequencer's items, one partition per shard
    transfer: str = "parcours.transfer"  # internal: merged profiles' state between shards
    stitched: str = "touchpoints.stitched"
    identity: str = "identity"
    credit: str = "attribution.credit"
    suppressions: str = "suppressions"
    audiences: str = "audiences"  # audience_entered / audience_exited records, keyed by profile
    late: str = "touchpoints.late"  # events behind the watermark (moment rules skipped)
    inventory: str = "reference.inventory"  # compacted: stock per store and product (rules' joins)
    preferences: str = "preferences"  # preference-centre records (consent, quiet hours, caps)
    triggers_prefix: str = "triggers."

    def trigger_topic(self, channel: str) -> str:
        return f"{self.triggers_prefix}{channel}"


@dataclass(frozen=True)
class Settings:
    kafka_url: str
    clickhouse_url: str
    data_dir: Path
    metrics_port: int | None = None
    web_port: int = 6066
    app_id: str = "parcours"
    input_partitions: int = 4
    batch_size: int = 2000
    batch_seconds: float = 0.5
    session_timeout: float = 10.0
    fetch_max_wait_ms: int = 20  # how long the broker may hold a fetch (0: the clients' defaults)
    # an input partition fully consumed this long stops holding the watermark
    idle_seconds: float = 5.0
    max_future_ms: int = DEFAULT_MAX_FUTURE_MS  # ingest refuses events further ahead of its clock
    # the sink stage inserts into ClickHouse when this many rows are buffered, or this long after
    # the oldest was read (whichever comes first)
    sink_batch_rows: int = 50_000
    sink_batch_seconds: float = 1.0
    rules_file: str | None = None  # the moment rule pack (default: the pack shipped with parcours)
    lookback_days: float = 30.0  # attribution lookback (and inactivity that closes a journey)
    lookback_by_type: tuple = ()  # ((conversion type, days), ...)
    half_life_days: float = 7.0  # time_decay
    position_ends: float = 0.4  # position_based: share of the first and of the last touch
    markov_orders: tuple = (1, 2)  # Markov transition counts written per closed path
    # the tables' local store (streams/worker/tables.py): rocksdb restarts from local state
    store: str = "rocksdb"
    store_cache_keys: int = 100_000  # rocksdb: decoded values kept in memory per table
    standby_replicas: int = 0  # Faust table_standby_replicas: workers keeping a warm copy
    journey_partitions: int = 4  # profile shards: partitions of parcours.journey (fixed once made)
    sink_stage: bool = True  # off: this worker writes no ClickHouse rows (another one's sink does)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)  # TLS / SASL
    # a Confluent Schema Registry (None: the local ids of schemas/registry.json): writer schemas
    # of Avro input by id, and the ids of Avro outputs (schemas/confluent/)
    schema_registry: RegistrySettings | None = None
    output_format: str = "json"  # public topics: json, or avro (Confluent wire format)
    topics: Topics = field(default_factory=Topics)

    @property
    def kafka_bootstrap(self) -> str:
        return kafka_bootstrap(self.kafka_url)

    @property
    def kafka_options(self) -> dict:
        """TLS / SASL keyword arguments for every aiokafka client (empty for PLAINTEXT)."""
        return self.kafka_security.client_options()


def kafka_bootstrap(url: str) -> str:
    """`kafka://h1:9092,h2:9092` -> `h1:9092,h2:9092`, with a readable error for anything else."""
    raw = url.strip()
    if not raw:
        raise ConfigError("PARCOURS_KAFKA_URL is empty (expected kafka://host:port[,host:port])")
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "kafka", raw
    if scheme not in ("kafka", "aiokafka"):
        raise ConfigError(f"PARCOURS_KAFKA_URL: unknown scheme {scheme!r} (expected kafka://host:port)")
    hosts = [h.strip() for h in rest.rstrip("/").split(",") if h.strip()]
    if not hosts:
        raise ConfigError(f"PARCOURS_KAFKA_URL {url!r} names no broker (expected kafka://host:port)")
    for host in hosts:
        name, colon, port = host.rpartition(":")
        if not colon or not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"PARCOURS_KAFKA_URL: {host!r} is not host:port")
    return ",".join(hosts)


def check_clickhouse_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("chdb", "http", "https"):
        raise ConfigError(
            f"PARCOURS_CLICKHOUSE_URL: unknown scheme {parts.scheme or url!r} "
            "(use chdb:///path or http://user:pw@host:8123/db)"
        )
    return url.strip()


def _int(env: dict, name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < 0:
        raise ConfigError(f"{name}={raw!r} must not be negative")
    return value


def _on_off(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in ("on", "off"):
        raise ConfigError(f"{name}={env[name]!r}: expected on or off")
    return raw == "on"


def _float(env: dict, name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None


def load(env: dict | None = None, **overrides) -> Settings:
    """Read settings from `env` (default: os.environ); keyword overrides win (CLI flags)."""
    env = dict(os.environ if env is None else env)
    data_dir = Path(overrides.pop("data_dir", None) or env.get("PARCOURS_DATA_DIR")
                    or DEFAULT_DATA_DIR)
    kafka_url = overrides.pop("kafka_url", None) or env.get("PARCOURS_KAFKA_URL") or "kafka://127.0.0.1:9092"
    ch_url = (overrides.pop("clickhouse_url", None) or env.get("PARCOURS_CLICKHOUSE_URL")
              or f"chdb://{(data_dir / 'clickhouse').resolve()}")
    kafka_bootstrap(kafka_url)
    check_clickhouse_url(ch_url)
    metrics_port = _int(env, "PARCOURS_METRICS_PORT", None)
    web_port = _int(env, "PARCOURS_WEB_PORT", 6066)
    for name, port in (("PARCOURS_METRICS_PORT", metrics_port), ("PARCOURS_WEB_PORT", web_port)):
        if port is not None and port > 65535:
            raise ConfigError(f"{name}={port} is not a TCP port")
    settings = dict(
        kafka_url=kafka_url,
        clickhouse_url=ch_url,
        data_dir=data_dir,
        metrics_port=metrics_port,
        web_port=web_port,
        app_id=env.get("PARCOURS_APP_ID") or "parcours",
        input_partitions=_int(env, "PARCOURS_INPUT_PARTITIONS", 4) or 1,
        batch_size=_int(env, "PARCOURS_BATCH_SIZE", 2000) or 1,
        batch_seconds=_float(env, "PARCOURS_BATCH_SECONDS", 0.5),
        session_timeout=_float(env, "PARCOURS_SESSION_TIMEOUT", 10.0),
        rules_file=env.get("PARCOURS_RULES") or None,
        idle_seconds=_float(env, "PARCOURS_IDLE_SECONDS", 5.0) or 5.0,
        fetch_max_wait_ms=_int(env, "PARCOURS_FETCH_MAX_WAIT_MS", 20),
        max_future_ms=_max_future_ms(env.get("PARCOURS_MAX_FUTURE_SECONDS")),
        sink_batch_rows=_int(env, "PARCOURS_SINK_BATCH_ROWS", 50_000) or 1,
        sink_batch_seconds=_float(env, "PARCOURS_SINK_BATCH_SECONDS", 1.0),
        store=_store(env.get("PARCOURS_STORE")),
        store_cache_keys=_int(env, "PARCOURS_STORE_CACHE_KEYS", 100_000),
        standby_replicas=_int(env, "PARCOURS_STANDBY_REPLICAS", 0),
        journey_partitions=_int(env, "PARCOURS_JOURNEY_PARTITIONS", 4) or 1,
        sink_stage=_on_off(env, "PARCOURS_SINK_STAGE", True),
    )
    lookback, by_type = _lookback(env.get("PARCOURS_LOOKBACK_DAYS"))
    ends = _float(env, "PARCOURS_POSITION_ENDS", 0.4)
    if not 0 <= ends <= 0.5:
        raise ConfigError(f"PARCOURS_POSITION_ENDS={ends} must be between 0 and 0.5")
    half_life = _float(env, "PARCOURS_HALF_LIFE_DAYS", 7.0)
    if half_life <= 0:
        raise ConfigError(f"PARCOURS_HALF_LIFE_DAYS={half_life} must be positive")
    try:
        security = kafka_security.from_env(env)
    except kafka_security.KafkaSecurityError as exc:
        raise ConfigError(str(exc)) from None
    settings.update(kafka_security=security)
    settings.update(schema_registry=registry_settings.from_env(env),  # RegistryConfigError
                    output_format=_output_format(env.get("PARCOURS_OUTPUT_FORMAT")))
    settings.update(lookback_days=lookback, lookback_by_type=by_type, half_life_days=half_life,
                    position_ends=ends, markov_orders=_orders(env.get("PARCOURS_MARKOV_ORDERS")))
    settings.update(overrides)
    return Settings(**settings)


def _lookback(raw: str | None) -> tuple[float, tuple]:
    """`30` or `30,lead=14,purchase=45` -> (default days, ((type, days), ...))."""
    if not raw or not raw.strip():
        return 30.0, ()
    default, by_type = 30.0, []
    for part in raw.split(","):
        name, eq, value = part.strip().rpartition("=")
        try:
            days = float(value)
        except ValueError:
            raise ConfigError(f"PARCOURS_LOOKBACK_DAYS={raw!r}: {value!r} is not a number of days "
                              "(e.g. 30 or 30,lead=14)") from None
        if days <= 0:
            raise ConfigError(f"PARCOURS_LOOKBACK_DAYS={raw!r}: days must be positive")
        if eq:
            by_type.append((name.strip(), days))
        else:
            default = days
    return default, tuple(by_type)


def _store(raw: str | None) -> str:
    """`PARCOURS_STORE`: memory or rocksdb (default)."""
    if raw is None or not raw.strip():
        return "rocksdb"
    value = raw.strip().lower()
    if value not in STORES:
        raise ConfigError(f"PARCOURS_STORE={raw!r}: expected memory or rocksdb")
    return value


def _output_format(raw: str | None) -> str:
    """`PARCOURS_OUTPUT_FORMAT`: json (default) or avro."""
    if raw is None or not raw.strip():
        return "json"
    value = raw.strip().lower()
    if value not in OUTPUT_FORMATS:
        raise ConfigError(f"PARCOURS_OUTPUT_FORMAT={raw!r}: expected json or avro")
    return value


def _max_future_ms(raw: str | None) -> int:
    """`PARCOURS_MAX_FUTURE_SECONDS`: how far ahead of ingest's clock an event time may be."""
    if raw is None or not raw.strip():
        return DEFAULT_MAX_FUTURE_MS
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"PARCOURS_MAX_FUTURE_SECONDS={raw!r}: expected seconds, 0 or more "
                          f"(e.g. 300 for 5 minutes)")
    return round(seconds * 1000)


def _orders(raw: str | None) -> tuple:
    if not raw or not raw.strip():
        return (1, 2)
    try:
        orders = tuple(sorted({int(x) for x in raw.split(",") if x.strip()}))
    except ValueError:
        raise ConfigError(f"PARCOURS_MARKOV_ORDERS={raw!r}: expected orders like 1,2") from None
    if not orders or orders[0] < 1 or orders[-1] > 4:
        raise ConfigError(f"PARCOURS_MARKOV_ORDERS={raw!r}: orders go from 1 to 4")
    return orders


def attribution_config(settings: "Settings"):
    """The AttributionConfig these settings describe."""
    from streams.attribution import AttributionConfig

    return AttributionConfig(lookback_days=settings.lookback_days,
                             lookback_days_by_type=settings.lookback_by_type,
                             half_life_days=settings.half_life_days,
                             position_ends=settings.position_ends,
                             markov_orders=settings.markov_orders)
