"""``oee up``: the whole system on one machine, one process per service.

Without REDIS_URL / DATABASE_URL it starts the embedded servers first, and stops them when
it stops. A service that dies is started again (``supervisor``: after a delay that grows
while it keeps dying), so ``kill -9`` of any one of them is something the system recovers
from by itself.

Start-up fails loudly: a taken port, a server that does not answer or a service that exits
before the system is ready stops everything with the reason and a non-zero status, and
"API on" is printed only once the gateway answers and every other service listens. SIGTERM
is taken as Ctrl-C: either stops everything within ``STOP_S`` (and the embedded servers
after), whatever the state.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from services.cli import preflight
from services.cli.launcher import StartFailed, System
from services.cli.supervisor import GaveUp, Restarts
from shared.accounts import AccountExists, account_of, any_key, create_key
from shared.config import load
from shared.db import migrate
from shared.process import setup_logging

# How often the supervisor looks at its processes.
POLL_S = 0.2
# Until the system is ready (the gateway's /readyz, every service's /metrics port): the
# services' imports and connections, on a busy machine.
READY_S = 60.0
# What has not stopped by then is killed; the embedded servers stop after it.
STOP_S = 7.0
# Under the data folder, so the README's curl lines can read it: $(cat .oee/api-key).
KEY_FILE = "api-key"


@contextmanager
def servers(root: Path, cluster: bool = False) -> Iterator[dict[str, str]]:
    """The environment for the services: REDIS_URL and DATABASE_URL as given, or embedded
    servers started under ``root`` (and stopped on exit); the schema migrated. With
    ``cluster``, the embedded Redis is a Redis Cluster of three primaries."""
    # Whether REDIS_URL and DATABASE_URL are set, not their values, is read here: an unset
    # one means an embedded server, where Settings would give its default URL instead.
    env = dict(os.environ)
    with ExitStack() as stack:
        if os.environ.get("REDIS_URL"):
            preflight.redis_answers(os.environ["REDIS_URL"])
        if os.environ.get("DATABASE_URL"):
            preflight.postgres_answers(os.environ["DATABASE_URL"])
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
    root = Path(data_dir or settings.data_dir).absolute()
    try:
        preflight.port_is_free(settings.host, settings.port, "PORT")
    except preflight.CannotStart as taken:
        raise preflight.CannotStart(f"the gateway: {taken}") from None
    # SIGTERM as Ctrl-C: a KeyboardInterrupt wherever start-up is, so every `with` and
    # `finally` on the way out stops what it started. SIGINT too, explicitly: a process
    # started in the background by a shell begins with it ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        with servers(root, cluster) as env:
            provision_key(env["DATABASE_URL"], root / KEY_FILE)
            return _run(System(env), {"persister": persisters, "router": routers,
                                      "executor": executors}, settings.port)
    except KeyboardInterrupt:
        print("oee: stopped", flush=True)
        return 0


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


def _run(system: System, counts: dict[str, int], port: int) -> int:
    """Starts the services and supervises them; stops them all on the way out."""
    restarts = Restarts(time.monotonic)
    try:
        system.start_all(counts)
        for service, processes in system.processes.items():
            for index in range(len(processes)):
                restarts.started((service, index))
        running = ", ".join(f"{len(ps)} {name}" for name, ps in system.processes.items())
        print(f"oee: starting {running}", flush=True)
        try:
            system.wait_ready(READY_S)
        except (StartFailed, TimeoutError) as failed:
            print(f"oee: {failed}; stopping", file=sys.stderr, flush=True)
            return 1
        print(f"oee: {running} running; API on http://127.0.0.1:{port}", flush=True)
        for process, url in system.metrics_urls().items():
            print(f"oee: metrics of {process} on {url}", flush=True)
        return _supervise(system, restarts)
    finally:
        # Stopping is bounded: another Ctrl-C meanwhile would only leave processes behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("oee: stopping", flush=True)
        system.stop(STOP_S)


def _supervise(system: System, restarts: Restarts,
               sleep: Callable[[float], None] = time.sleep) -> int:
    """Starts again each process that exited, when ``restarts`` says; returns 1 once one
    cannot start. Runs until interrupted."""
    while True:
        for service, processes in system.processes.items():
            for index, process in enumerate(processes):
                code = process.poll()
                if code is None or restarts.waiting((service, index)):
                    continue
                try:
                    delay = restarts.exited((service, index))
                except GaveUp as gave_up:
                    print(f"oee: {service} {gave_up} (last exit code {code}); stopping",
                          file=sys.stderr, flush=True)
                    return 1
                print(f"oee: {service} exited with code {code}; starting it again in "
                      f"{delay:g} s", file=sys.stderr, flush=True)
        for service, index in restarts.due():
            system.start(service, index)
            restarts.started((service, index))
        sleep(POLL_S)
