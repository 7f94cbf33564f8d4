"""`oee up` on a machine with neither Redis nor PostgreSQL: the embedded servers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from services.cli.embedded import free_port
from shared.accounts import Account, account_of

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
    log = (server_dir / "up.log").open("wb")
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
