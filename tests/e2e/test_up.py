"""`oee up` on a machine with neither Redis nor PostgreSQL: the embedded servers. And with
REDIS_URL and DATABASE_URL set: a start-up that fails loudly, and Ctrl-C that stops
everything within 10 s whatever the state."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from bench.harness import forget
from services.cli.embedded import free_port
from shared.accounts import Account, account_of
from shared.config import load
from tests.infra import fresh_database

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def first_start_key(data_dir: Path) -> str:
    """The operator key the first start made: in ``api-key``, private, printed once, and
    accepted by the database."""
    path = data_dir / "api-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    log = (data_dir / "up.log").read_text()
    lines = log.splitlines()
    announced = next(i for i, line in enumerate(lines) if "operator key (also in" in line)
    assert str(path) in lines[announced] and lines[announced + 1] == key
    assert log.count(key) == 1
    database_url = re.search(r"embedded PostgreSQL at (\S+)", log)
    assert database_url, log
    assert asyncio.run(account_of(database_url[1], key)) == Account("admin", "operator")
    return key


def test_up_runs_everything_with_embedded_servers_and_stops_them(server_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"PORT": str(port), "OEE_DATA_DIR": str(server_dir), "OEE_QUOTE_LATENCY_MS": "10",
                "OEE_EXECUTION_LATENCY_MS": "20-40"})
    with (server_dir / "up.log").open("wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert up.poll() is None, (server_dir / "up.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (server_dir / "up.log").read_text()
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in server_dir.rglob("*.oee-pid")]
        assert len(pids) == 2 and all(alive(p) for p in pids)
        key = first_start_key(server_dir)
        with connect(f"ws://127.0.0.1:{port}/orders/execute", open_timeout=10,
                     additional_headers={"x-api-key": key}) as ws:
            ws.send(json.dumps(
                {"tokenIn": "SOL", "tokenOut": "USDC", "amount": 1, "slippage": 0.01}))
            statuses = [json.loads(m)["status"] for m in ws]
        assert statuses == ["pending", "routing", "building", "submitted", "confirmed"]
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0, (server_dir / "up.log").read_text()
    assert not any(alive(p) for p in pids)
    assert (server_dir / "redis" / "appendonlydir").is_dir()  # Redis ran with AOF


@pytest.fixture
def up_env(redis_url: str, admin_database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`oee up` over the test run's servers, on a database of its own (it makes a key)."""
    with fresh_database(admin_database_url) as database_url:
        env = {**os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url,
               "OEE_NAMESPACE": f"up-{secrets.token_hex(4)}", "PORT": str(free_port()),
               "OEE_DATA_DIR": str(tmp_path / "data")}
        yield env
        forget(load(env))


def test_up_with_its_port_taken_names_the_gateway_and_exits_at_once(
        up_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(up_env["PORT"])))
        holder.listen()
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "services.cli", "up"], env=up_env,
                              capture_output=True, text=True, timeout=60)
    assert time.monotonic() - began < 10
    assert done.returncode == 1, done.stdout + done.stderr
    assert (f"oee up: cannot start: the gateway: port {up_env['PORT']} on 127.0.0.1 (PORT)"
            " is taken") in done.stderr
    assert "API on" not in done.stdout


def children(pid: int) -> list[int]:
    found = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat_file.parent.name))
    return found


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("moment", ["starting", "serving"])
def test_ctrl_c_stops_everything_within_10_s(
        up_env: dict[str, str], tmp_path: Path, moment: str) -> None:
    log_path = tmp_path / "up.log"
    reached = "oee: starting" if moment == "starting" else "API on"
    with log_path.open("wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "services.cli", "up"], env=up_env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while reached not in log_path.read_text():
            assert up.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.02)
        services = children(up.pid)
        assert len(services) == 5, log_path.read_text()
        began = time.monotonic()
        up.send_signal(signal.SIGINT)
        code = up.wait(10)
        assert time.monotonic() - began < 10
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    assert code == 0, log_path.read_text()
    assert not [pid for pid in services if running(pid)]
    assert "oee: stopped" in log_path.read_text()
