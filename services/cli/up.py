"""``oee up``: the whole system on one machine, one process per service.

Without REDIS_URL / DATABASE_URL it starts the embedded servers first, and stops them when
it stops. A service that dies is started again, so ``kill -9`` of any one of them is
something the system recovers from by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from services.cli.launcher import System
from shared.accounts import AccountExists, account_of, any_key, create_key
from shared.config import load
from shared.db import migrate
from shared.process import setup_logging

RESTART_DELAY_S = 1.0
# Under the data folder, so the README's curl lines can read it: $(cat .oee/api-key).
KEY_FILE = "api-key"


@contextmanager
def servers(root: Path, cluster: bool = False) -> Iterator[dict[str, str]]:
    """The environment for the services: REDIS_URL and DATABASE_URL as given, or embedded
    servers started under ``root`` (and stopped on exit); the schema migrated. With
    ``cluster``, the embedded Redis is a Redis Cluster of three primaries."""
    env = dict(os.environ)
    with ExitStack() as stack:
        if cluster and not os.environ.get("REDIS_URL"):
            from services.cli.embedded import EmbeddedCluster

            nodes = stack.enter_context(EmbeddedCluster(root / "redis-cluster").start())
            env["REDIS_URL"] = nodes.url
            print(f"oee: embedded Redis Cluster (Valkey, 3 primaries) at {nodes.url}",
                  flush=True)
        elif not os.environ.get("REDIS_URL"):
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


def register(commands: Any) -> None:
    """Adds ``oee up`` to ``oee``'s sub-parsers."""
    up = commands.add_parser("up", help="run the whole system on this machine")
    up.add_argument("--routers", type=int, default=1)
    up.add_argument("--executors", type=int, default=1)
    up.add_argument("--persisters", type=int, default=1)
    up.add_argument("--cluster", action="store_true",
                    help="without REDIS_URL, an embedded Redis Cluster of 3 primaries")
    up.add_argument("--data-dir", default=None,
                    help="where embedded servers keep data (default: $OEE_DATA_DIR or ./.oee)")
    up.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return up(args.routers, args.executors, args.persisters, args.data_dir,
              cluster=args.cluster)


def up(routers: int, executors: int, persisters: int, data_dir: str | None,
       cluster: bool = False) -> int:
    settings = load()
    setup_logging(settings.log_level)
    root = Path(data_dir or os.environ.get("OEE_DATA_DIR") or ".oee").absolute()
    with servers(root, cluster) as env:
        provision_key(env["DATABASE_URL"], root / KEY_FILE)
        system = System(env)
        system.start_all({"persister": persisters, "router": routers, "executor": executors})
        return _supervise(system, settings.port)


def provision_key(database_url: str, path: Path) -> None:
    """On the first start (no key in the database at all), an operator key named ``admin``,
    printed once and kept in ``path``, readable by this user only."""
    if not asyncio.run(any_key(database_url)):
        try:
            key = asyncio.run(create_key(database_url, "admin", operator=True))
        except AccountExists:
            pass  # another `oee up` on the same database made it first
        else:
            _write_private(path, key + "\n")
            print(f"oee: operator key (also in {path}):", flush=True)
            print(key, flush=True)
            return
    if not path.exists():
        print("oee: API keys exist already; make one with `oee keys create NAME --operator`",
              flush=True)
    elif (account := asyncio.run(account_of(database_url, path.read_text().strip()))) is None:
        print(f"oee: {path} holds a key this database refuses; make another with"
              " `oee keys create NAME --operator`", flush=True)
    else:
        print(f"oee: API key of account {account.name!r} in {path}", flush=True)


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a file that did not exist
        file.write(text)


def _supervise(system: System, port: int) -> int:
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    running = ", ".join(f"{len(ps)} {name}" for name, ps in system.processes.items())
    print(f"oee: {running} running; API on http://127.0.0.1:{port}", flush=True)
    for process, url in system.metrics_urls().items():
        print(f"oee: metrics of {process} on {url}", flush=True)
    while not stopping:
        for service in system.restart_dead():
            print(f"oee: {service} exited; started again", file=sys.stderr, flush=True)
        time.sleep(RESTART_DELAY_S)
    print("oee: stopping", flush=True)
    system.stop()
    return 0
