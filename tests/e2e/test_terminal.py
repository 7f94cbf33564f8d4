"""The terminal tools against the real processes: ``oee submit`` watches an order to its
end and says how it ended in its exit status; ``oee status`` shows every group."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import System, system
from shared.accounts import create_key

pytestmark = pytest.mark.e2e

HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]


def oee(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def client_env(running: System, data_dir: Path, **extra: str) -> dict[str, str]:
    """A client's environment: where the servers are; no key but what a test gives."""
    env = {k: v for k, v in os.environ.items() if k != "OEE_API_KEY"}
    for name in ("REDIS_URL", "DATABASE_URL", "OEE_NAMESPACE", "PORT"):
        env[name] = running.env[name]
    return {**env, "OEE_DATA_DIR": str(data_dir), **extra}


def statuses(stdout: str) -> list[str]:
    return [line.split()[0] for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def open_system(redis_url: str, database_url: str,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Keys off, as the pipeline tests run it."""
    namespace = f"term-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace,
                tmp_path_factory.mktemp("terminal-logs")) as running:
        yield running


@pytest.fixture(scope="module")
def keyed_system(redis_url: str, database_url: str,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    namespace = f"term-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("keyed-logs"),
                OEE_AUTH="required") as running:
        yield running


@pytest.fixture(scope="module")
def key(database_url: str) -> str:
    return asyncio.run(create_key(database_url, f"terminal-{secrets.token_hex(4)}"))


def test_submit_prints_every_status_and_exits_0_when_confirmed(
    open_system: System, tmp_path: Path
) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", "--slippage", "0.01",
               "--url", open_system.url, env=client_env(open_system, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(done.stdout) == HAPPY
    confirmed = done.stdout.splitlines()[-1]
    assert "0.5 ->" in confirmed and "tx " in confirmed


def test_submit_finds_the_gateway_from_port(open_system: System, tmp_path: Path) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", "--json",
               "--idempotency-key", secrets.token_hex(8), "--type", "market",
               env=client_env(open_system, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    assert [m["status"] for m in messages] == HAPPY
    assert len({m["orderId"] for m in messages}) == 1


def test_a_refused_order_prints_the_error_and_exits_1(
    open_system: System, tmp_path: Path
) -> None:
    done = oee("submit", "SOL", "SOL", "0.5", "--url", open_system.url,
               env=client_env(open_system, tmp_path))
    assert done.returncode == 1
    assert "distinct_tokens" in done.stderr
    assert done.stdout == ""


def test_an_unreachable_gateway_is_one_line_and_exit_1(
    open_system: System, tmp_path: Path
) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", "--url", "http://127.0.0.1:9",
               env=client_env(open_system, tmp_path))
    assert done.returncode == 1
    assert done.stderr.startswith("oee: cannot submit to ws://127.0.0.1:9/orders/execute")
    assert "Traceback" not in done.stderr


def test_status_lists_every_group(open_system: System, tmp_path: Path) -> None:
    env = client_env(open_system, tmp_path)
    assert oee("submit", "SOL", "USDC", "0.5", env=env).returncode == 0
    done = oee("status", env=env)
    assert done.returncode == 0, done.stderr
    for group in ("router", "executor", "persister"):
        assert group in done.stdout
    assert "Redis memory" in done.stdout
    assert "behind the log" in done.stdout


def test_status_as_json(open_system: System, tmp_path: Path) -> None:
    done = oee("status", "--json", env=client_env(open_system, tmp_path))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    groups = {g["name"]: g for g in report["groups"]}
    assert {"router", "executor", "persister"} <= set(groups)
    assert all(g["consumers"] for g in groups.values())
    assert groups["router"]["stream"].endswith(":queue:router")
    assert report["redis_used_memory"] > 0
    assert report["postgres"]["error"] is None
    assert report["log_newest"] is not None


def test_with_keys_required_submit_sends_the_key(
    keyed_system: System, key: str, tmp_path: Path
) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", "--url", keyed_system.url, "--key", key,
               env=client_env(keyed_system, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(done.stdout) == HAPPY


def test_the_key_comes_from_the_environment_then_the_data_folder(
    keyed_system: System, key: str, tmp_path: Path
) -> None:
    by_env = oee("submit", "SOL", "USDC", "0.5",
                 env=client_env(keyed_system, tmp_path, OEE_API_KEY=key))
    assert by_env.returncode == 0, by_env.stderr
    (tmp_path / "api-key").write_text(key + "\n")
    by_file = oee("submit", "SOL", "USDC", "0.5", env=client_env(keyed_system, tmp_path))
    assert by_file.returncode == 0, by_file.stderr


def test_without_a_key_it_is_refused(keyed_system: System, tmp_path: Path) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", "--url", keyed_system.url,
               env=client_env(keyed_system, tmp_path))
    assert done.returncode == 1
    assert "unauthorized" in done.stderr


@pytest.fixture(scope="module")
def failing_system(redis_url: str, database_url: str,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """Every attempt fails, and there is one."""
    namespace = f"term-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("failing-logs"),
                OEE_FAILURE_RATE="1", OEE_MAX_ATTEMPTS="1") as running:
        yield running


def test_a_failed_order_exits_1_after_printing_why(
    failing_system: System, tmp_path: Path
) -> None:
    done = oee("submit", "SOL", "USDC", "0.5", env=client_env(failing_system, tmp_path))
    assert done.returncode == 1, done.stdout + done.stderr
    assert statuses(done.stdout)[-1] == "failed", done.stdout + done.stderr
    assert "error:" in done.stdout.splitlines()[-1]
