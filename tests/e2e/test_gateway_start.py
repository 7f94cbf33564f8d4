"""The gateway process fails loudly and stops promptly, as a real process: a port held by
another socket, a Redis or PostgreSQL that does not answer, or a bad setting ends it at once
with a non-zero code and one line that says why; SIGTERM or Ctrl-C stop it within 10 s while
it starts, while it serves, and while it waits on a server that does not answer."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import forget
from services.cli.embedded import free_port
from services.cli.launcher import StartFailed, System
from shared.config import load

pytestmark = pytest.mark.e2e

GATEWAY = [sys.executable, "-m", "services.cli", "gateway"]
# The server alone, without `oee gateway`'s check of the port first: what closes the race
# between that check and the bind.
SERVER_ALONE = [sys.executable, "-c", "from services.gateway.server import serve; "
                "from shared.config import load; serve(load())"]
STOP_S = 10


@pytest.fixture
def env(redis_url: str, database_url: str) -> Iterator[dict[str, str]]:
    settings = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url,
                "OEE_NAMESPACE": f"start-{secrets.token_hex(4)}", "PORT": str(free_port()),
                "OEE_AUTH": "off"}
    yield settings
    forget(load(settings))


@pytest.fixture
def held(env: dict[str, str]) -> Iterator[socket.socket]:
    """The gateway's port, bound and listening by another socket."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(env["PORT"])))
        holder.listen()
        yield holder


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that takes connections and never answers on them (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def run(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str],
                                                          float]:
    began = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - began


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_held_port_stops_oee_gateway_at_once_with_one_line(
    env: dict[str, str], held: socket.socket
) -> None:
    done, took = run(GATEWAY, env)
    assert done.returncode == 1, done.stderr
    assert took < STOP_S
    assert lines(done.stderr) == [f"oee gateway: cannot start: port {env['PORT']} on 127.0.0.1 "
                                  "(PORT) is taken: Address already in use"]


def test_a_port_taken_after_the_check_stops_the_server_before_it_starts(
    env: dict[str, str], held: socket.socket
) -> None:
    done, took = run(SERVER_ALONE, env)
    assert done.returncode == 1, done.stderr
    assert took < STOP_S
    # Bound before the app starts: there was nothing to start, nothing to shut down.
    assert lines(done.stderr) == [f"oee gateway: cannot start: port {env['PORT']} on "
                                  "127.0.0.1 (PORT) is taken: Address already in use"]


@pytest.mark.parametrize("setting", ["REDIS_URL", "DATABASE_URL"])
def test_a_server_that_refuses_stops_oee_gateway_at_once_with_one_line(
    env: dict[str, str], setting: str
) -> None:
    scheme = "redis" if setting == "REDIS_URL" else "postgresql"
    port = free_port()  # nothing listens there
    done, took = run(GATEWAY, {**env, setting: f"{scheme}://127.0.0.1:{port}/x"})
    assert done.returncode == 1, done.stderr
    assert took < STOP_S
    [line] = lines(done.stderr)
    assert line.startswith("oee gateway: cannot start: ") and f"127.0.0.1:{port}" in line
    assert f"does not answer ({setting})" in line


@pytest.mark.parametrize("service", ["gateway", "router"])
def test_another_partition_count_stops_a_service_at_once_with_one_line(
    env: dict[str, str], service: str
) -> None:
    """The count a namespace records at its first start; a process set to another stops
    before it touches a key, and one that leaves it unset takes the recorded count."""
    first = subprocess.run([sys.executable, "-c", "from shared.config import load; "
                            "from shared.stream import recorded_partitions; "
                            "print(recorded_partitions(load()))"],
                           env={**env, "OEE_PARTITIONS": "3"}, capture_output=True, text=True,
                           timeout=60, check=True)
    assert first.stdout.strip() == "3"
    command = [sys.executable, "-m", "services.cli", service]
    done, took = run(command, {**env, "OEE_PARTITIONS": "2"})
    assert done.returncode == 1, done.stderr
    assert took < STOP_S
    [line] = lines(done.stderr)
    assert line.startswith(f"oee {service}: cannot start: Redis holds namespace ")
    assert "in 3 partitions, but OEE_PARTITIONS is 2" in line


@pytest.mark.parametrize(("name", "value"), [("PORT", "eighty"), ("OEE_AUTH", "maybe")])
def test_a_bad_setting_stops_oee_gateway_at_once_with_one_line(
    env: dict[str, str], name: str, value: str
) -> None:
    done, took = run(GATEWAY, {**env, name: value})
    assert done.returncode == 2, done.stderr
    assert took < STOP_S
    [line] = lines(done.stderr)
    assert line.startswith(f"oee: configuration error: {name} ")


def ready(port: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def stopped_within(process: subprocess.Popen[bytes], sig: int) -> float:
    began = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(STOP_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return time.monotonic() - began


@pytest.mark.parametrize("after_s", [0.05, 0.3, 0.8, 1.5])
def test_sigterm_while_the_gateway_starts_stops_it_within_10_s(
    env: dict[str, str], tmp_path: Path, after_s: float
) -> None:
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(GATEWAY, env=env, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(after_s)  # the moment of the signal, not a wait for the process
    assert stopped_within(gateway, signal.SIGTERM) < STOP_S, (tmp_path / "gateway.log").read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_gateway_serves_stops_it_within_10_s(
    env: dict[str, str], tmp_path: Path, sig: int
) -> None:
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(GATEWAY, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not ready(env["PORT"]):
        assert gateway.poll() is None and time.monotonic() < deadline, (
            (tmp_path / "gateway.log").read_text())
        time.sleep(0.05)
    assert stopped_within(gateway, sig) < STOP_S
    said = (tmp_path / "gateway.log").read_text()
    # Stopped, not crashed: uvicorn raises SIGTERM again once it has shut down, so the
    # process ends as the signal ends one; Ctrl-C ends it quietly.
    assert gateway.returncode in (0, -sig), said
    assert "Application shutdown complete" in said and "Traceback" not in said, said


def test_sigterm_while_the_gateway_waits_on_a_hung_redis_stops_it_within_10_s(
    env: dict[str, str], silent_server: int, tmp_path: Path
) -> None:
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = subprocess.Popen(GATEWAY, env={**env, "REDIS_URL": (
            f"redis://127.0.0.1:{silent_server}/0")}, stdout=log, stderr=subprocess.STDOUT)
    time.sleep(0.5)  # the moment of the signal: the check of Redis is waiting for an answer
    assert gateway.poll() is None, (tmp_path / "gateway.log").read_text()
    assert stopped_within(gateway, signal.SIGTERM) < STOP_S


def test_a_system_is_not_ready_while_a_service_behind_the_gateway_could_not_start(
        env: dict[str, str], tmp_path: Path) -> None:
    """The gateway ready, the trigger gone at start (its metrics port taken): the launcher
    says so at once, rather than a caller waiting on a trigger that never comes."""
    subprocess.run([sys.executable, "-m", "services.cli", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    running = System(env, tmp_path)
    with socket.socket() as holder:  # bound, not listening: nothing answers there
        holder.bind(("127.0.0.1", free_port()))
        running.metrics_ports[("trigger", 0)] = holder.getsockname()[1]
        try:
            running.start_all({})
            with pytest.raises(StartFailed) as failed:
                running.wait_ready()
        finally:
            running.stop()
    assert failed.value.service == "trigger"
