"""Settings read from the environment, once, at the edge of each process.

Each setting is declared once, as a field of ``Settings``: its type and constraints
(``msgspec.Meta``), its default, and an ``Env`` naming the variable and saying what it
means. Parsing the environment, the error that names a bad variable, and the README's
table (``oee settings --markdown``) are all derived from these declarations.
"""

from __future__ import annotations

import math
import os
import socket
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta


class ConfigError(ValueError):
    """An environment variable holds a value the engine cannot use."""


class Range(msgspec.Struct, frozen=True):
    """Inclusive range of milliseconds; a single number is a range of one value."""

    low: float
    high: float

    @classmethod
    def parse(cls, name: str, text: str) -> Range:
        parts = text.split("-", 1)
        try:
            low = float(parts[0])
            high = float(parts[1]) if len(parts) == 2 else low
        except ValueError:
            raise ConfigError(
                f"{name} must be a number or a range like 2000-3000, got {text!r}"
            ) from None
        if not (math.isfinite(low) and math.isfinite(high)) or low < 0 or high < low:
            raise ConfigError(f"{name} must be >= 0 with low <= high, got {text!r}")
        return cls(low, high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def __str__(self) -> str:
        """As the variable is written: '2000-3000', or '500' for a range of one value."""
        if self.low == self.high:
            return _plain(self.low)
        return f"{_plain(self.low)}-{_plain(self.high)}"


class Env(msgspec.Struct, frozen=True):
    """Where a setting comes from and what it is for."""

    var: str
    doc: str
    # How the README shows the default when the value alone would mislead (an empty seed
    # means a random one); ``{default}`` stands for the value.
    shown: str = ""


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
AuthMode = Literal["required", "off"]
LogFormat = Literal["text", "json"]
TracingMode = Literal["off", "otlp", "console"]


# The order of the fields is the order of the README's table.
class Settings(msgspec.Struct, frozen=True, kw_only=True):
    port: Annotated[int, Meta(ge=0, le=65535), Env("PORT", "gateway port")] = 8000
    host: Annotated[str, Env(
        "OEE_HOST", "gateway bind address (`0.0.0.0` in the container image)"
    )] = "127.0.0.1"
    metrics_port: Annotated[int, Meta(ge=0, le=65535), Env(
        "OEE_METRICS_PORT",
        "a worker's `/metrics` port, on `OEE_HOST` (0: none; the gateway serves it on `PORT`)",
    )] = 0
    redis_url: Annotated[str, Env(
        "REDIS_URL", "Redis: `redis://`, `unix://` and a socket's path, or `rediss://` (TLS)",
        shown="embedded with `oee up`; else {default}"
    )] = "redis://127.0.0.1:6379/0"
    database_url: Annotated[str, Env(
        "DATABASE_URL", "PostgreSQL", shown="embedded with `oee up`; else {default}"
    )] = "postgresql://postgres@127.0.0.1:5432/postgres"
    quote_latency_ms: Annotated[float, Meta(ge=0, le=60_000), Env(
        "OEE_QUOTE_LATENCY_MS", "simulated quote latency per venue"
    )] = 200.0
    execution_latency_ms: Annotated[Range, Env(
        "OEE_EXECUTION_LATENCY_MS", "time per execution attempt"
    )] = Range(2000.0, 3000.0)
    failure_rate: Annotated[float, Meta(ge=0, le=1), Env(
        "OEE_FAILURE_RATE", "chance that one attempt fails transiently"
    )] = 0.0
    price_drift: Annotated[float, Meta(ge=0, le=0.5), Env(
        "OEE_PRICE_DRIFT", "amplitude of the token prices' drift around their reference"
    )] = 0.03
    market_tick_ms: Annotated[float, Meta(ge=1, le=3_600_000), Env(
        "OEE_MARKET_TICK_MS", "the market moves in ticks of this length"
    )] = 1000.0
    launch_every_s: Annotated[float, Meta(ge=0, le=2_592_000), Env(
        "OEE_LAUNCH_EVERY_S",
        "a seeded launch (token, mint, venue, price, liquidity) every this many seconds,"
        " made by the trigger service, one per interval however many run (0: none)",
    )] = 0.0
    # As a Solana blockhash expires, an old route is not sent.
    quote_max_age_ms: Annotated[float, Meta(ge=1, le=86_400_000), Env(
        "OEE_QUOTE_MAX_AGE_MS", "a route older than this is routed again instead of sent"
    )] = 60_000.0
    seed: Annotated[str, Env(
        "OEE_SEED", "makes a run reproducible", shown="(random)"
    )] = ""
    executor_concurrency: Annotated[int, Meta(ge=1, le=10_000), Env(
        "OEE_EXECUTOR_CONCURRENCY", "orders in flight per executor process"
    )] = 10
    max_attempts: Annotated[int, Meta(ge=1, le=100), Env(
        "OEE_MAX_ATTEMPTS", "attempts per order"
    )] = 3
    retry_base_ms: Annotated[float, Meta(ge=0, le=600_000), Env(
        "OEE_RETRY_BASE_MS", "first retry delay; doubles each attempt"
    )] = 500.0
    batch_size: Annotated[int, Meta(ge=1, le=10_000), Env(
        "OEE_BATCH_SIZE", "entries per `XREADGROUP` (the persister reads 5x)"
    )] = 100
    block_ms: Annotated[int, Meta(ge=1, le=60_000), Env(
        "OEE_BLOCK_MS", "how long a blocking read waits"
    )] = 5000
    claim_idle_ms: Annotated[int, Meta(ge=1, le=86_400_000), Env(
        "OEE_CLAIM_IDLE_MS",
        "idle time after which another consumer's pending entry is claimed",
    )] = 30_000
    # Like arq's job_timeout: a handler that hangs lets go of its entries.
    handling_timeout_s: Annotated[float, Meta(ge=0.001, le=86_400), Env(
        "OEE_HANDLING_TIMEOUT_S",
        "a consumer gives up handling an entry after this long and leaves it to be claimed"
        " (by any consumer, after `OEE_CLAIM_IDLE_MS`)",
    )] = 300.0
    max_deliveries: Annotated[int, Meta(ge=1, le=1000), Env(
        "OEE_MAX_DELIVERIES",
        "an entry delivered more often than this is dead-lettered and its order failed",
    )] = 5
    # After that, late subscribers read the history from PostgreSQL.
    finished_order_ttl_s: Annotated[int, Meta(ge=1, le=10**7), Env(
        "OEE_FINISHED_ORDER_TTL_S",
        "how long Redis keeps a finished order's index (and its landing on the simulated"
        " chain) once PostgreSQL has the order",
    )] = 60
    # PostgreSQL keeps all of it.
    stream_retention_s: Annotated[float, Meta(ge=0, le=10**8), Env(
        "OEE_STREAM_RETENTION_S",
        "the log keeps at least this much history; older entries are trimmed once every"
        " group is done with them",
    )] = 60.0
    # Every Redis key the engine touches starts with this, so test runs never collide.
    namespace: Annotated[str, Env(
        "OEE_NAMESPACE",
        "prefix of every Redis key (a partition's log is `{namespace}:{tag}:events`)"
    )] = "oee"
    # Recorded in Redis at first start; another count is refused until `oee repartition`.
    # 0 takes the recorded one (``shared.stream.partitions_of``): partitions spread a
    # cluster's shards, and on a single Redis each one more only costs.
    partitions: Annotated[int, Meta(ge=0, le=1024), Env(
        "OEE_PARTITIONS",
        "partitions of the log, the order index, the queues, the dead letters and the"
        " simulated chain's ledger, by a hash of the order id (spread over a cluster's"
        " shards)",
        shown="{default}: the count recorded at the namespace's first start; a new"
              " namespace `1` on a single Redis, `4` on a cluster",
    )] = 0
    redis_wait_replicas: Annotated[int, Meta(ge=0, le=16), Env(
        "OEE_REDIS_WAIT_REPLICAS",
        "an append returns once this many replicas have it (`WAIT`, at most 1 s); 0: at once",
    )] = 0
    consumer: Annotated[str, Env(
        "OEE_CONSUMER",
        "consumer name in the group; set it to a stable name to resume a process's own"
        " pending entries after a restart",
        shown="`{service}-{host}-{pid}`",
    )] = ""
    data_dir: Annotated[str, Env(
        "OEE_DATA_DIR", "where `oee up` keeps the embedded servers' data"
    )] = "./.oee"
    log_level: Annotated[LogLevel, Env("OEE_LOG_LEVEL", "log level")] = "INFO"
    log_format: Annotated[LogFormat, Env(
        "OEE_LOG_FORMAT",
        "`text`: a line for people; `json`: one JSON object per line, with the service,"
        " consumer, order and event it is about",
    )] = "text"
    tracing: Annotated[TracingMode, Env(
        "OEE_TRACING",
        "`off`: no traces, and no tracing code loaded; `otlp`: each order as one trace, sent"
        " to `OTEL_EXPORTER_OTLP_ENDPOINT`; `console`: the spans as JSON on stdout",
    )] = "off"
    # Decided once per order, where it starts: the other services follow the order's
    # context, so an order is traced whole or not at all.
    trace_sample_ratio: Annotated[float, Meta(ge=0, le=1), Env(
        "OEE_TRACE_SAMPLE_RATIO",
        "the share of orders traced, drawn by the gateway as it accepts each",
    )] = 1.0
    # OpenTelemetry's own variables, read here so `oee settings` shows them too.
    otlp_url: Annotated[str, Env(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "the OTLP/HTTP receiver of the traces (spans go to its `/v1/traces`)",
    )] = "http://localhost:4318"
    service_name: Annotated[str, Env(
        "OTEL_SERVICE_NAME", "the `service.name` a process's spans carry",
        shown="`oee-{service}`",
    )] = ""
    auth: Annotated[AuthMode, Env(
        "OEE_AUTH",
        "`required`: every request needs an API key; `off`: every request acts as the"
        " built-in operator account `local`",
    )] = "required"
    rate_limit_per_min: Annotated[int, Meta(ge=1, le=10**7), Env(
        "OEE_RATE_LIMIT_PER_MIN",
        "submits per account per minute, shared by every gateway (bursts of up to the"
        " same number)",
    )] = 600
    idempotency_ttl_s: Annotated[int, Meta(ge=1, le=10**8), Env(
        "OEE_IDEMPOTENCY_TTL_S", "how long an `Idempotency-Key` keeps its answer"
    )] = 24 * 3600
    max_ws_per_account: Annotated[int, Meta(ge=1, le=10**6), Env(
        "OEE_MAX_WS_PER_ACCOUNT", "open WebSockets per account on one gateway process"
    )] = 100
    max_open_orders: Annotated[int, Meta(ge=1, le=10**7), Env(
        "OEE_MAX_OPEN_ORDERS", "unfinished orders per account"
    )] = 1000

    def consumer_name(self, service: str) -> str:
        """The name this process reads its group as: ``consumer`` when set, else one of
        its own, unique to the process."""
        return self.consumer or f"{service}-{socket.gethostname()}-{os.getpid()}"


class Setting(msgspec.Struct, frozen=True):
    """One declared setting, as ``load`` and the README's table use it."""

    field: str
    env: Env
    kind: Any  # the field's type with its constraints, as msgspec converts to it
    default: Any

    @property
    def rule(self) -> str:
        """What the variable accepts, in words: '' when any text will do."""
        base, meta = _unwrap(self.kind)
        if base is Range:
            return "a number or a range `low-high`, 0 <= low <= high"
        if typing.get_origin(base) is Literal:
            return f"one of {', '.join(typing.get_args(base))}"
        noun = {int: "an integer", float: "a number"}.get(base)
        if noun is None:
            return ""
        if meta is not None and meta.ge is not None and meta.le is not None:
            return f"{noun} from {_number(meta.ge)} to {_number(meta.le)}"
        return noun

    @property
    def shown_default(self) -> str:
        value = f"`{_plain(self.default)}`"
        return self.env.shown.replace("{default}", value) if self.env.shown else value

    def parse(self, text: str) -> Any:
        base, _ = _unwrap(self.kind)
        if base is Range:
            return Range.parse(self.env.var, text)
        if typing.get_origin(base) is Literal:
            # Choices are matched in any case: `OEE_LOG_LEVEL=debug` means DEBUG.
            text = next((c for c in typing.get_args(base) if c.lower() == text.lower()), text)
        try:
            return msgspec.convert(text, self.kind, strict=False)
        except msgspec.ValidationError:
            raise ConfigError(f"{self.env.var} must be {self.rule}, got {text!r}") from None


def _unwrap(kind: Any) -> tuple[Any, Meta | None]:
    if typing.get_origin(kind) is not Annotated:
        return kind, None
    base, *extras = typing.get_args(kind)
    return base, next((e for e in extras if isinstance(e, Meta)), None)


def _plain(value: object) -> str:
    """A value as one would write it in the variable: 200.0 as '200'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value: float) -> str:
    """1_000_000 as '1,000,000' and 0.5 as '0.5', for people."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,}"


def _declared() -> tuple[Setting, ...]:
    settings = []
    for field in msgspec.structs.fields(Settings):
        env = next(e for e in typing.get_args(field.type) if isinstance(e, Env))
        # Without the Env marker, msgspec still sees the same constraints.
        base, meta = _unwrap(field.type)
        kind = base if meta is None else Annotated[base, meta]
        settings.append(Setting(field.name, env, kind, field.default))
    return tuple(settings)


SETTINGS: tuple[Setting, ...] = _declared()


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``env`` (default: the process's environment); an unset or empty
    variable means the default."""
    env = os.environ if env is None else env
    given = {}
    for setting in SETTINGS:
        text = env.get(setting.env.var, "").strip()
        if text:
            given[setting.field] = setting.parse(text)
    return Settings(**given)
