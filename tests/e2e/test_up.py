"""`oee up` on a machine with neither Redis nor PostgreSQL: the embedded servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from services.cli.embedded import free_port

pytestmark = pytest.mark.e2e


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
        with connect(f"ws://127.0.0.1:{port}/orders/execute", open_timeout=10) as ws:
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
