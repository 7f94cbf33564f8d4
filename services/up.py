"""``oee up``: the whole system on one machine, one process per service.

Without REDIS_URL / DATABASE_URL it starts the embedded servers first, and stops them when
it stops. A service that dies is started again, so ``kill -9`` of any one of them is
something the system recovers from by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from shared.config import load
from shared.db import migrate
from shared.process import setup_logging

RESTART_DELAY_S = 1.0


def _spawn(service: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "services.cli", service], env=env)


def up(routers: int, executors: int, persisters: int, data_dir: str | None) -> int:
    settings = load()
    setup_logging(settings.log_level)
    env = dict(os.environ)
    root = Path(data_dir or os.environ.get("OEE_DATA_DIR") or ".oee").absolute()
    with ExitStack() as servers:
        if not os.environ.get("REDIS_URL"):
            from services.embedded import EmbeddedRedis

            redis = servers.enter_context(EmbeddedRedis(root / "redis").start())
            env["REDIS_URL"] = redis.url
            print(f"oee: embedded Redis (Valkey) at {redis.url}", flush=True)
        if not os.environ.get("DATABASE_URL"):
            from services.embedded import EmbeddedPostgres

            postgres = servers.enter_context(EmbeddedPostgres(root / "postgres").start())
            postgres.create_database("oee")
            env["DATABASE_URL"] = postgres.url("oee")
            print(f"oee: embedded PostgreSQL at {env['DATABASE_URL']}", flush=True)
        asyncio.run(migrate(env["DATABASE_URL"]))
        plan = (["persister"] * persisters + ["router"] * routers
                + ["executor"] * executors + ["gateway"])
        return _supervise(plan, env, settings.port)


def _supervise(plan: list[str], env: dict[str, str], port: int) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = [_spawn(service, env) for service in plan]
    print(f"oee: {', '.join(plan)} running; API on http://127.0.0.1:{port}", flush=True)
    while not stopping:
        for index, child in enumerate(children):
            if child.poll() is not None and not stopping:
                print(f"oee: {plan[index]} exited with {child.returncode}; restarting",
                      file=sys.stderr, flush=True)
                time.sleep(RESTART_DELAY_S)
                children[index] = _spawn(plan[index], env)
        time.sleep(0.2)
    print("oee: stopping", flush=True)
    # The gateway first, so no new order arrives while the workers finish theirs.
    for child in reversed(children):
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 40
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0
