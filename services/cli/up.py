"""``oee up``: the whole system on one machine, one process per service.

Without REDIS_URL / DATABASE_URL it starts the embedded servers first, and stops them when
it stops. A service that dies is started again, so ``kill -9`` of any one of them is
something the system recovers from by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from services.cli.launcher import System
from shared.config import load
from shared.db import migrate
from shared.process import setup_logging

RESTART_DELAY_S = 1.0


@contextmanager
def servers(root: Path) -> Iterator[dict[str, str]]:
    """The environment for the services: REDIS_URL and DATABASE_URL as given, or embedded
    servers started under ``root`` (and stopped on exit); the schema migrated."""
    env = dict(os.environ)
    with ExitStack() as stack:
        if not os.environ.get("REDIS_URL"):
            from services.cli.embedded import EmbeddedRedis

            redis = stack.enter_context(EmbeddedRedis(root / "redis").start())
            env["REDIS_URL"] = redis.url
            print(f"oee: embedded Redis (Valkey) at {redis.url}", flush=True)
        if not os.environ.get("DATABASE_URL"):
            from services.cli.embedded import EmbeddedPostgres

            postgres = stack.enter_context(EmbeddedPostgres(root / "postgres").start())
            postgres.create_database("oee")
            env["DATABASE_URL"] = postgres.url("oee")
            print(f"oee: embedded PostgreSQL at {env['DATABASE_URL']}", flush=True)
        asyncio.run(migrate(env["DATABASE_URL"]))
        yield env


def up(routers: int, executors: int, persisters: int, data_dir: str | None) -> int:
    settings = load()
    setup_logging(settings.log_level)
    root = Path(data_dir or os.environ.get("OEE_DATA_DIR") or ".oee").absolute()
    with servers(root) as env:
        system = System(env)
        system.start_all({"persister": persisters, "router": routers, "executor": executors})
        return _supervise(system, settings.port)


def _supervise(system: System, port: int) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = ", ".join(f"{len(ps)} {name}" for name, ps in system.processes.items())
    print(f"oee: {running} running; API on http://127.0.0.1:{port}", flush=True)
    while not stopping:
        for service in system.restart_dead():
            print(f"oee: {service} exited; started again", file=sys.stderr, flush=True)
        time.sleep(RESTART_DELAY_S)
    print("oee: stopping", flush=True)
    system.stop()
    return 0
