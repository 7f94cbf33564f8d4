"""shared/config.py: settings from the environment."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Range, Settings, load


def test_defaults() -> None:
    settings = load({})
    assert settings == Settings()
    assert settings.quote_latency_ms == 200
    assert settings.execution_latency_ms == Range(2000, 3000)
    assert settings.failure_rate == 0
    assert settings.executor_concurrency == 10
    assert settings.port == 8000
    assert settings.max_attempts == 3
    assert settings.seed == ""
    assert settings.stream == "oee:events"


def test_empty_values_mean_defaults() -> None:
    settings = load({"PORT": "", "OEE_QUOTE_LATENCY_MS": "", "OEE_EXECUTION_LATENCY_MS": ""})
    assert settings.port == 8000
    assert settings.quote_latency_ms == 200
    assert settings.execution_latency_ms == Range(2000, 3000)


def test_execution_latency_single_number() -> None:
    span = load({"OEE_EXECUTION_LATENCY_MS": "500"}).execution_latency_ms
    assert span == Range(500, 500)
    assert span.mean == 500


def test_execution_latency_range() -> None:
    span = load({"OEE_EXECUTION_LATENCY_MS": "2000-3000"}).execution_latency_ms
    assert (span.low, span.high) == (2000, 3000)
    assert span.mean == 2500


def test_execution_latency_zero() -> None:
    assert load({"OEE_EXECUTION_LATENCY_MS": "0-0"}).execution_latency_ms == Range(0, 0)


def test_values_are_read() -> None:
    settings = load({
        "PORT": "9000",
        "REDIS_URL": "redis://example:6379/1",
        "DATABASE_URL": "postgresql://u@db/x",
        "OEE_QUOTE_LATENCY_MS": "5",
        "OEE_FAILURE_RATE": "0.25",
        "OEE_SEED": "abc",
        "OEE_EXECUTOR_CONCURRENCY": "3",
        "OEE_NAMESPACE": "ns",
        "OEE_LOG_LEVEL": "debug",
    })
    assert settings.port == 9000
    assert settings.redis_url == "redis://example:6379/1"
    assert settings.database_url == "postgresql://u@db/x"
    assert settings.quote_latency_ms == 5
    assert settings.failure_rate == 0.25
    assert settings.seed == "abc"
    assert settings.executor_concurrency == 3
    assert settings.stream == "ns:events"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("rate", ["0", "1", "0.5"])
def test_failure_rate_bounds_are_inclusive(rate: str) -> None:
    assert load({"OEE_FAILURE_RATE": rate}).failure_rate == float(rate)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OEE_EXECUTION_LATENCY_MS", "abc"),
        ("OEE_EXECUTION_LATENCY_MS", "3000-2000"),
        ("OEE_EXECUTION_LATENCY_MS", "-5"),
        ("OEE_EXECUTION_LATENCY_MS", "1-2-3"),
        ("OEE_EXECUTION_LATENCY_MS", "2000-"),
        ("OEE_FAILURE_RATE", "2"),
        ("OEE_FAILURE_RATE", "-0.1"),
        ("OEE_FAILURE_RATE", "often"),
        ("OEE_FAILURE_RATE", "nan"),
        ("OEE_QUOTE_LATENCY_MS", "fast"),
        ("OEE_QUOTE_LATENCY_MS", "-1"),
        ("OEE_EXECUTOR_CONCURRENCY", "0"),
        ("PORT", "70000"),
        ("PORT", "http"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({name: value})
    assert name in str(caught.value)
    assert repr(value) in str(caught.value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


def test_range_parse_directly() -> None:
    assert Range.parse("X", "10-20") == Range(10, 20)
    assert Range.parse("X", "1.5") == Range(1.5, 1.5)
    with pytest.raises(ConfigError, match="X"):
        Range.parse("X", "")


@pytest.mark.parametrize("value", ["nan", "inf", "1000-inf", "nan-nan"])
def test_non_finite_execution_latency_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="OEE_EXECUTION_LATENCY_MS"):
        load({"OEE_EXECUTION_LATENCY_MS": value})
