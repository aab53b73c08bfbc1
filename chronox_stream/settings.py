"""The one settings object of chronox-stream.

Every knob is read from the environment in exactly one place (``Settings()``),
with the ``CHRONOX_`` prefix, and may be overridden by CLI flags through
``Settings.with_overrides``. Secrets are ``SecretStr`` so that neither ``repr``
nor a log line can print them. The README's table of variables is checked
against ``Settings.model_fields`` by a unit test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chronox_stream.domain.timeframes import TIMEFRAMES

LogFormat = Literal["text", "json"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

#: The variables the API key is read from, the first one set winning: the project's own,
#: then the names Polygon's and Massive's clients read.
API_KEY_VARIABLES = ("CHRONOX_POLYGON_API_KEY", "POLYGON_API_KEY", "MASSIVE_API_KEY")


class Settings(BaseSettings):
    """Typed, frozen configuration; construct once and pass explicitly."""

    # hide_input_in_errors: a refused combination must not echo the input (secrets among it).
    model_config = SettingsConfigDict(
        env_prefix="CHRONOX_", frozen=True, extra="ignore", hide_input_in_errors=True,
        populate_by_name=True,
    )

    # Kafka and the Faust application
    kafka_bootstrap: str = Field("127.0.0.1:9092", description="Kafka bootstrap servers.")
    kafka_controller_port: int = Field(
        9093, description="KRaft controller port of the local stack."
    )
    kafka_sasl_ssl_port: int = Field(
        9094, description="SASL_SSL listener port of the local stack's broker."
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="How every Kafka client connects: PLAINTEXT, SSL, SASL_*."
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        None, description="SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(None, description="SASL password (secret).")
    kafka_ssl_cafile: Path | None = Field(
        None, description="CA certificates (PEM) the brokers' certificates are checked against."
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM) for TLS client authentication."
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, description="Private key (PEM) of the client certificate."
    )
    kafka_ssl_key_password: SecretStr | None = Field(
        None, description="Password of the client's private key (secret)."
    )
    topic_prefix: str = Field("chronox", description="Prefix of every topic name.")
    topic_partitions: int = Field(8, ge=1, description="Partitions of the topics the app creates.")
    topic_replication_factor: int = Field(
        1, ge=1, description="Replication factor of the topics the app creates."
    )
    topic_min_insync_replicas: int | None = Field(
        None, ge=1, description="min.insync.replicas of the topics the app creates."
    )
    topic_retention_bars_ms: int | None = Field(
        None, ge=-1, description="retention.ms of the bar topics (-1: forever)."
    )
    topic_retention_ticks_ms: int | None = Field(
        None, ge=-1, description="retention.ms of the raw and internal tick topics."
    )
    topic_retention_dlq_ms: int | None = Field(
        None, ge=-1, description="retention.ms of the dead-letter topic."
    )
    topic_retention_status_ms: int | None = Field(
        None, ge=-1, description="retention.ms of the status topic."
    )
    app_id: str = Field("chronox-stream", description="Faust app id = Kafka consumer group.")
    store: str = Field("rocksdb://", description="Faust table store (rocksdb:// or memory://).")
    data_dir: Path = Field(Path(".chronox/data"), description="Faust data dir (table stores).")
    table_standby_replicas: int = Field(0, ge=0, description="Standby replicas of each table.")
    faust_session_timeout_s: float = Field(
        60.0,
        ge=6,
        description="A Faust group member silent this long is replaced by a rebalance, seconds.",
    )
    shutdown_grace_s: float = Field(
        20.0, gt=0, description="Seconds a stopping worker may drain before it exits anyway."
    )
    preload_backfill: bool = Field(
        True, description="Load the calendar and flat-file reader at worker start, not on use."
    )
    web_enabled: bool = Field(
        True, description="Serve /health, /ready and /metrics from the worker (its web server)."
    )
    web_port: int = Field(6066, description="Port of the Faust web server.")
    web_bind: str = Field(
        "127.0.0.1", description="Address the web server listens on (0.0.0.0 in a container)."
    )

    # Sinks
    postgres_dsn: SecretStr = Field(
        SecretStr("postgresql://chronox:chronox@127.0.0.1:5432/chronox"),
        description="asyncpg DSN of the bar database (secret).",
    )
    postgres_schema: str = Field("chronox", description="PostgreSQL schema holding the bars table.")
    redis_url: SecretStr = Field(
        SecretStr("redis://127.0.0.1:6379/0"), description="Redis URL (secret)."
    )
    redis_prefix: str = Field("", description="Prefix of every Redis channel and key.")
    postgres_timeout_s: float = Field(
        30.0, gt=0, description="PostgreSQL connect and statement timeout of the sinks, seconds."
    )
    redis_timeout_s: float = Field(
        5.0, gt=0, description="Redis connect and command timeout of the workers, seconds."
    )

    # Market data sources
    polygon_rest_url: str = Field("http://127.0.0.1:8765", description="Polygon REST base URL.")
    polygon_ws_url: str = Field("ws://127.0.0.1:8765/stocks", description="Polygon WebSocket URL.")
    polygon_api_key: SecretStr = Field(
        SecretStr(""),
        description="Polygon/Massive REST/WS API key (secret); also read from POLYGON_API_KEY "
        "or MASSIVE_API_KEY, in that order after this one.",
        validation_alias=AliasChoices(*API_KEY_VARIABLES),
    )
    s3_endpoint_url: str = Field("http://127.0.0.1:8766", description="S3 endpoint of flat files.")
    s3_bucket: str = Field("flatfiles", description="Bucket holding the flat files.")
    s3_access_key: SecretStr = Field(SecretStr("chronox"), description="S3 access key (secret).")
    s3_secret_key: SecretStr = Field(SecretStr("chronox"), description="S3 secret key (secret).")
    allow_insecure_urls: bool = Field(
        False,
        description="Allow http:// and ws:// source URLs to hosts other than loopback "
        "(credentials in clear text).",
    )
    backfill_lookback_days: int = Field(
        7, ge=1, description="Range of a request without start: this many days before now."
    )
    flatfiles_dir: Path | None = Field(
        None, description="Read flat files from this folder (bucket layout) instead of S3."
    )
    source_modules: str = Field(
        "",
        description="Comma-separated Python modules imported at start, each declaring extra "
        "sources with their runners.",
    )
    rest_requests_per_minute: int = Field(
        0, ge=0, description="REST requests per minute shared by all workers (0: no limit)."
    )
    gap_threshold_days: int = Field(
        7, ge=0, description="A last backfill older than this many days is a gap to now."
    )
    gap_window_days: int = Field(7, ge=1, description="Largest api window of a gap, in days.")
    http_timeout_s: float = Field(30.0, gt=0, description="Timeout of one REST request, seconds.")
    rest_max_pages: int = Field(
        10_000, ge=1, description="Pages one paginated REST query may follow before it fails."
    )
    rest_max_body_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="Largest REST response body read, bytes."
    )
    rest_retry_after_cap_s: float = Field(
        60.0, ge=0, description="Longest wait a server's Retry-After may impose, seconds."
    )

    # Live data: WebSocket ticks and their bars
    ws_idle_timeout_s: float = Field(
        30.0, gt=0, description="A WebSocket silent this long (no data, no ping) is reconnected."
    )
    tick_timeframes: str = Field(
        "1m,5m,15m,30m,1h,1d", description="Comma-separated timeframes built from raw ticks."
    )
    tick_grace_ms: int = Field(
        2_000, ge=0, description="Watermark lag behind the latest tick: on-time lateness, ms."
    )
    tick_late_limit_ms: int = Field(
        900_000, ge=0, description="How long after its window closes a tick still corrects it, ms."
    )
    tick_live_ms: int = Field(
        0, ge=0, description="Publish in-progress bars to Redis every this many ms (0: off)."
    )
    tick_idle_close_ms: int = Field(
        5_000, ge=0, description="Close windows of a tick partition silent this long (0: never)."
    )
    tick_max_future_ms: int = Field(
        60_000, ge=0, description="A tick later than the wall clock plus this is dead-lettered, ms."
    )
    state_horizon_days: float = Field(
        30.0, gt=0, description="Dedup buckets and tick state unused this long are purged, days."
    )

    # The scheduler daemon (the leader's timer)
    scheduler_interval_s: float = Field(
        0.0, ge=0, description="Run the registry's symbols every this many seconds (0: off)."
    )
    splits_interval_s: float = Field(
        86_400.0,
        ge=0,
        description="Fetch the registry symbols' splits every this many seconds (0: off).",
    )

    # The read path (`chronox bars`, `chronox serve`)
    read_max_rows: int = Field(
        100_000, ge=1, description="Most bars one read returns; a larger one is refused."
    )
    serve_bind: str = Field(
        "127.0.0.1", description="Address `chronox serve` listens on (0.0.0.0 in a container)."
    )
    serve_port: int = Field(6070, description="Port of `chronox serve` (HTTP API, live page).")
    serve_max_live: int = Field(
        64, ge=1, description="Live streams `chronox serve` holds open at once; more get 503."
    )

    # The simulator (`chronox sim`)
    sim_host: str = Field("127.0.0.1", description="Simulator bind address (loopback).")
    sim_port: int = Field(8765, description="Simulator REST + WebSocket port.")
    sim_s3_port: int = Field(8766, description="Simulator S3 endpoint port.")
    sim_seed: int = Field(7, description="Seed of the simulator's market.")
    sim_data_dir: Path = Field(
        Path(".chronox/sim"), description="Where the simulator writes flat files."
    )

    # The local stack (`chronox stack`)
    stack_dir: Path = Field(
        Path(".chronox/stack"), description="Logs, pid files, Kafka data, jars."
    )

    # Logging
    log_level: str = Field("INFO", description="Log level.")
    log_format: LogFormat = Field("text", description="text (human) or json (one object per line).")

    @field_validator("tick_timeframes")
    @classmethod
    def _known_timeframes(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in TIMEFRAMES]
        if not names or unknown:
            raise ValueError(f"tick_timeframes: unknown {unknown} (known: {', '.join(TIMEFRAMES)})")
        return ",".join(names)

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Settings:
        """Refuse, at load, a connection that could only fail at the first broker; the
        message names settings, never a value."""
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def tick_timeframe_names(self) -> list[str]:
        return self.tick_timeframes.split(",")

    def with_overrides(self, **overrides: Any) -> Settings:
        """A validated copy with the non-``None`` overrides applied (CLI flags win over env)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        if not changes:
            return self
        return type(self).model_validate({**self.model_dump(), **changes})

    def to_env(self) -> dict[str, str]:
        """The ``CHRONOX_*`` variables that reproduce these settings in a child process.

        It carries secrets in clear (a child needs them): pass it to a process
        environment, never to a log.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"CHRONOX_{name.upper()}"] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return env

    def topic(self, name: str) -> str:
        """Full topic name for a short name such as ``control`` or ``bars.1m``."""
        return f"{self.topic_prefix}.{name}"


def kafka_security_problems(settings: Settings) -> list[str]:
    """What is wrong with the Kafka security and durability settings taken together."""
    problems = []
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        missing = [name for name in ("kafka_sasl_mechanism", "kafka_sasl_username",
                                     "kafka_sasl_password") if not _given(getattr(settings, name))]
        if missing:
            problems.append(f"kafka_security_protocol {protocol} needs {', '.join(missing)}")
    ssl_files = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
    if not protocol.endswith("SSL") and any(getattr(settings, name) for name in ssl_files):
        problems.append(f"kafka_ssl_* files are set but kafka_security_protocol is {protocol} "
                        "(SSL or SASL_SSL uses them)")
    if bool(settings.kafka_ssl_certfile) != bool(settings.kafka_ssl_keyfile):
        problems.append("kafka_ssl_certfile and kafka_ssl_keyfile go together")
    if settings.kafka_ssl_key_password is not None and not settings.kafka_ssl_keyfile:
        problems.append("kafka_ssl_key_password is set without kafka_ssl_keyfile")
    for name in ssl_files:
        path = getattr(settings, name)
        if path is not None and not Path(path).expanduser().is_file():
            problems.append(f"{name} is not a readable file: {path}")
    isr = settings.topic_min_insync_replicas
    if isr is not None and isr > settings.topic_replication_factor:
        problems.append("topic_min_insync_replicas exceeds topic_replication_factor "
                        "(no write could ever be acknowledged)")
    return problems


def _given(value: object) -> bool:
    if isinstance(value, SecretStr):
        return bool(value.get_secret_value())
    return bool(value)
