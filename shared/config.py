"""Settings read from the environment, once, at the edge of each process."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import msgspec


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


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    redis_url: str = "redis://127.0.0.1:6379/0"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    host: str = "127.0.0.1"
    port: int = 8000
    # Every Redis key the engine touches starts with this, so test runs never collide.
    namespace: str = "oee"
    seed: str = ""
    quote_latency_ms: float = 200.0
    execution_latency_ms: Range = Range(2000.0, 3000.0)
    failure_rate: float = 0.0
    # How far token prices drift from their reference, as a fraction.
    price_drift: float = 0.03
    # The market moves in ticks of this length.
    market_tick_ms: float = 1000.0
    # A route older than this is not executed (as a Solana blockhash expires); routed again.
    quote_max_age_ms: float = 60_000.0
    executor_concurrency: int = 10
    max_attempts: int = 3
    retry_base_ms: float = 500.0
    batch_size: int = 100
    block_ms: int = 1000
    # A pending entry idle this long is taken over by another consumer.
    claim_idle_ms: int = 30_000
    # An entry delivered more often than this is dead-lettered.
    max_deliveries: int = 5
    # How long the per-order index in Redis (and the simulated chain's landing) outlives a
    # finished order once PostgreSQL has it; after that, late subscribers read the history
    # from PostgreSQL.
    finished_order_ttl_s: int = 60
    # The stream keeps at least this much history (and never trims what a group still
    # needs); PostgreSQL keeps all of it.
    stream_retention_s: float = 60.0
    log_level: str = "INFO"
    # API keys: "required", or "off" (every request acts as one built-in operator account).
    auth: str = "required"
    # Submits per account per minute, shared by every gateway; bursts up to the same number.
    rate_limit_per_min: int = 600
    # How long an Idempotency-Key keeps its answer.
    idempotency_ttl_s: int = 24 * 3600
    # Open WebSockets per account on one gateway process.
    max_ws_per_account: int = 100
    # Orders not yet confirmed or failed, per account.
    max_open_orders: int = 1000

    @property
    def stream(self) -> str:
        return f"{self.namespace}:events"


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {text!r}")
    return value


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    defaults = Settings()
    latency = env.get("OEE_EXECUTION_LATENCY_MS")
    return Settings(
        redis_url=env.get("REDIS_URL") or defaults.redis_url,
        database_url=env.get("DATABASE_URL") or defaults.database_url,
        host=env.get("OEE_HOST") or defaults.host,
        port=int(_number(env, "PORT", defaults.port, 0, 65535)),
        namespace=env.get("OEE_NAMESPACE") or defaults.namespace,
        seed=env.get("OEE_SEED", defaults.seed),
        quote_latency_ms=_number(env, "OEE_QUOTE_LATENCY_MS", defaults.quote_latency_ms, 0, 60_000),
        execution_latency_ms=(
            Range.parse("OEE_EXECUTION_LATENCY_MS", latency)
            if latency
            else defaults.execution_latency_ms
        ),
        failure_rate=_number(env, "OEE_FAILURE_RATE", defaults.failure_rate, 0, 1),
        price_drift=_number(env, "OEE_PRICE_DRIFT", defaults.price_drift, 0, 0.5),
        market_tick_ms=_number(env, "OEE_MARKET_TICK_MS", defaults.market_tick_ms, 1, 3_600_000),
        quote_max_age_ms=_number(
            env, "OEE_QUOTE_MAX_AGE_MS", defaults.quote_max_age_ms, 1, 86_400_000
        ),
        executor_concurrency=int(
            _number(env, "OEE_EXECUTOR_CONCURRENCY", defaults.executor_concurrency, 1, 10_000)
        ),
        max_attempts=int(_number(env, "OEE_MAX_ATTEMPTS", defaults.max_attempts, 1, 100)),
        retry_base_ms=_number(env, "OEE_RETRY_BASE_MS", defaults.retry_base_ms, 0, 600_000),
        batch_size=int(_number(env, "OEE_BATCH_SIZE", defaults.batch_size, 1, 10_000)),
        block_ms=int(_number(env, "OEE_BLOCK_MS", defaults.block_ms, 1, 60_000)),
        claim_idle_ms=int(
            _number(env, "OEE_CLAIM_IDLE_MS", defaults.claim_idle_ms, 1, 86_400_000)
        ),
        max_deliveries=int(
            _number(env, "OEE_MAX_DELIVERIES", defaults.max_deliveries, 1, 1000)
        ),
        finished_order_ttl_s=int(
            _number(env, "OEE_FINISHED_ORDER_TTL_S", defaults.finished_order_ttl_s, 1, 10**7)
        ),
        stream_retention_s=_number(
            env, "OEE_STREAM_RETENTION_S", defaults.stream_retention_s, 0, 10**8
        ),
        log_level=env.get("OEE_LOG_LEVEL", defaults.log_level).upper(),
        auth=_choice(env, "OEE_AUTH", defaults.auth, ("required", "off")),
        rate_limit_per_min=int(
            _number(env, "OEE_RATE_LIMIT_PER_MIN", defaults.rate_limit_per_min, 1, 10**7)
        ),
        idempotency_ttl_s=int(
            _number(env, "OEE_IDEMPOTENCY_TTL_S", defaults.idempotency_ttl_s, 1, 10**8)
        ),
        max_ws_per_account=int(
            _number(env, "OEE_MAX_WS_PER_ACCOUNT", defaults.max_ws_per_account, 1, 10**6)
        ),
        max_open_orders=int(
            _number(env, "OEE_MAX_OPEN_ORDERS", defaults.max_open_orders, 1, 10**7)
        ),
    )


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    text = env.get(name) or default
    if text not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {text!r}")
    return text
