"""shared/config.py: settings from the environment."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services.cli.settings import effective, markdown
from shared.config import SETTINGS, ConfigError, Range, Settings, load

ROOT = Path(__file__).resolve().parents[2]

# A value other than the default for every declared variable, and what it reads as.
EVERY = {
    "PORT": ("9000", 9000),
    "OEE_HOST": ("0.0.0.0", "0.0.0.0"),
    "REDIS_URL": ("redis://example:6379/1", "redis://example:6379/1"),
    "DATABASE_URL": ("postgresql://u:secret@db/x", "postgresql://u:secret@db/x"),
    "OEE_QUOTE_LATENCY_MS": ("5", 5.0),
    "OEE_EXECUTION_LATENCY_MS": ("10-20", Range(10, 20)),
    "OEE_FAILURE_RATE": ("0.25", 0.25),
    "OEE_PRICE_DRIFT": ("0.1", 0.1),
    "OEE_MARKET_TICK_MS": ("250", 250.0),
    "OEE_LAUNCH_EVERY_S": ("30", 30.0),
    "OEE_QUOTE_MAX_AGE_MS": ("5000", 5000.0),
    "OEE_SEED": ("abc", "abc"),
    "OEE_EXECUTOR_CONCURRENCY": ("3", 3),
    "OEE_MAX_ATTEMPTS": ("7", 7),
    "OEE_RETRY_BASE_MS": ("20", 20.0),
    "OEE_BATCH_SIZE": ("50", 50),
    "OEE_BLOCK_MS": ("200", 200),
    "OEE_CLAIM_IDLE_MS": ("2000", 2000),
    "OEE_HANDLING_TIMEOUT_S": ("30", 30.0),
    "OEE_MAX_DELIVERIES": ("9", 9),
    "OEE_FINISHED_ORDER_TTL_S": ("3600", 3600),
    "OEE_STREAM_RETENTION_S": ("0.5", 0.5),
    "OEE_NAMESPACE": ("ns", "ns"),
    "OEE_PARTITIONS": ("16", 16),
    "OEE_REDIS_WAIT_REPLICAS": ("1", 1),
    "OEE_CONSUMER": ("executor-a", "executor-a"),
    "OEE_DATA_DIR": ("/var/oee", "/var/oee"),
    "OEE_LOG_LEVEL": ("warning", "WARNING"),
    "OEE_LOG_FORMAT": ("JSON", "json"),
    "OEE_METRICS_PORT": ("9100", 9100),
    "OEE_TRACING": ("OTLP", "otlp"),
    "OEE_TRACE_SAMPLE_RATIO": ("0.1", 0.1),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("http://jaeger:4318", "http://jaeger:4318"),
    "OTEL_SERVICE_NAME": ("engine", "engine"),
    "OEE_AUTH": ("off", "off"),
    "OEE_RATE_LIMIT_PER_MIN": ("60", 60),
    "OEE_IDEMPOTENCY_TTL_S": ("600", 600),
    "OEE_MAX_WS_PER_ACCOUNT": ("4", 4),
    "OEE_MAX_OPEN_ORDERS": ("20", 20),
}

# For every variable with a rule, values it refuses.
BAD = {
    "PORT": ["70000", "-1", "http", "80.5"],
    "OEE_QUOTE_LATENCY_MS": ["fast", "-1", "60001", "inf"],
    "OEE_EXECUTION_LATENCY_MS": ["abc", "3000-2000", "-5", "1-2-3", "2000-"],
    "OEE_FAILURE_RATE": ["2", "-0.1", "often", "nan"],
    "OEE_PRICE_DRIFT": ["0.6", "-0.01", "x"],
    "OEE_MARKET_TICK_MS": ["0", "3600001", "x"],
    "OEE_LAUNCH_EVERY_S": ["-1", "2592001", "hourly"],
    "OEE_QUOTE_MAX_AGE_MS": ["0", "x"],
    "OEE_EXECUTOR_CONCURRENCY": ["0", "10001", "1.5", "ten"],
    "OEE_MAX_ATTEMPTS": ["0", "101"],
    "OEE_RETRY_BASE_MS": ["-1", "600001"],
    "OEE_BATCH_SIZE": ["0", "10001"],
    "OEE_BLOCK_MS": ["0", "60001"],
    "OEE_CLAIM_IDLE_MS": ["0", "86400001"],
    "OEE_HANDLING_TIMEOUT_S": ["0", "86401", "long"],
    "OEE_MAX_DELIVERIES": ["0", "1001"],
    "OEE_FINISHED_ORDER_TTL_S": ["0", "10000001"],
    "OEE_STREAM_RETENTION_S": ["-1", "100000001"],
    "OEE_PARTITIONS": ["-1", "1025", "four"],
    "OEE_REDIS_WAIT_REPLICAS": ["-1", "17"],
    "OEE_LOG_LEVEL": ["loud", "verbose"],
    "OEE_LOG_FORMAT": ["yaml", "xml"],
    "OEE_METRICS_PORT": ["-1", "65536", "http"],
    "OEE_TRACING": ["on", "jaeger", "true"],
    "OEE_TRACE_SAMPLE_RATIO": ["1.5", "-0.1", "half", "nan"],
    "OEE_AUTH": ["maybe", "on"],
    "OEE_RATE_LIMIT_PER_MIN": ["0", "10000001"],
    "OEE_IDEMPOTENCY_TTL_S": ["0", "100000001"],
    "OEE_MAX_WS_PER_ACCOUNT": ["0", "1000001"],
    "OEE_MAX_OPEN_ORDERS": ["0", "10000001"],
}


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
    assert settings.namespace == "ns"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("rate", ["0", "1", "0.5"])
def test_failure_rate_bounds_are_inclusive(rate: str) -> None:
    assert load({"OEE_FAILURE_RATE": rate}).failure_rate == float(rate)


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


def test_every_declared_setting_is_read_from_its_variable() -> None:
    assert sorted(EVERY) == sorted(s.env.var for s in SETTINGS)
    settings = load({name: text for name, (text, _) in EVERY.items()})
    for setting in SETTINGS:
        _, expected = EVERY[setting.env.var]
        assert getattr(settings, setting.field) == expected, setting.env.var
        assert expected != setting.default, f"{setting.env.var}: pick a value not the default"


def test_values_are_trimmed_and_choices_match_in_any_case() -> None:
    settings = load({"PORT": " 9000 ", "OEE_AUTH": "OFF", "OEE_LOG_LEVEL": "Error"})
    assert (settings.port, settings.auth, settings.log_level) == (9000, "off", "ERROR")


def test_every_variable_with_a_rule_has_bad_values_tested() -> None:
    assert sorted(BAD) == sorted(s.env.var for s in SETTINGS if s.rule)


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in BAD.items() for value in values]
)
def test_each_bad_value_is_one_line_naming_the_variable_and_the_rule(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load({name: value})
    message = str(caught.value)
    assert message.startswith(f"{name} must be "), message
    assert message.endswith(f"got {value!r}"), message
    assert "\n" not in message


def test_the_log_level_error_lists_the_levels() -> None:
    with pytest.raises(ConfigError) as caught:
        load({"OEE_LOG_LEVEL": "loud"})
    assert str(caught.value) == (
        "OEE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, got 'loud'"
    )


def test_settings_are_built_directly_with_keywords() -> None:
    settings = Settings(namespace="t", execution_latency_ms=Range(1, 2), auth="off")
    assert (settings.namespace, settings.auth) == ("t", "off")
    assert settings.execution_latency_ms.mean == 1.5


def test_a_worker_reads_its_group_as_the_consumer_its_settings_name() -> None:
    from shared.events import OrderRequested
    from shared.worker import worker_settings

    def consumer(settings: Settings) -> str:
        return worker_settings(settings, "router", (OrderRequested,), batch_size=1,
                               chunk_size=1, concurrency=1).consumer

    assert consumer(load({"OEE_CONSUMER": "router-a"})) == "router-a"
    # Unset: a name of the process's own, so two processes never share their entries.
    assert consumer(load({})) == f"router-{socket.gethostname()}-{os.getpid()}"


def test_the_consumer_is_read_from_the_settings_not_around_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shared.worker import consumer_name

    monkeypatch.setenv("OEE_CONSUMER", " executor-b ")
    assert consumer_name("executor") == "executor-b"
    assert Settings().consumer_name("executor") != "executor-b"


def test_the_readme_table_is_the_generated_one() -> None:
    """Regenerate with `oee settings --markdown` and paste it under ## Configuration."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Configuration\n", 1)[1]
    lines = section.split("\n|", 1)[1].split("\n")
    table = ["|" + lines[0], *(line for line in _while_table(lines[1:]))]
    assert "\n".join(table) + "\n" == markdown()


def _while_table(lines: list[str]) -> list[str]:
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_the_table_has_a_row_per_setting() -> None:
    rows = markdown().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == [s.env.var for s in SETTINGS]
    assert "| `OEE_SEED` | (random) |" in markdown()
    assert "embedded with `oee up`; else `redis://127.0.0.1:6379/0`" in markdown()
    assert "| `OEE_EXECUTION_LATENCY_MS` | `2000-3000` |" in markdown()


def test_effective_settings_hide_passwords() -> None:
    text = effective({"DATABASE_URL": "postgresql://u:secret@db/x", "OEE_SEED": "s"})
    assert "DATABASE_URL=postgresql://u:***@db/x" in text
    assert "secret" not in text
    assert "OEE_SEED=s" in text


@pytest.mark.parametrize("command", ["router", "settings"])
def test_a_bad_value_stops_the_command_with_one_line_and_exit_2(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", command],
        env={"PATH": "/usr/bin:/bin", "OEE_LOG_LEVEL": "loud"},
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "oee: configuration error: OEE_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR,"
        " CRITICAL, got 'loud'\n"
    )
    assert done.stdout == ""
