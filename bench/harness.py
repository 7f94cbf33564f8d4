"""The services as processes with small delays, for the load generators, the measuring
tools and the end-to-end tests: ``system()`` starts them over a migrated database on a free
port and, once stopped, deletes the run's keys (``forget``).

``System`` and ``SERVICES`` are ``oee up``'s own (``services.cli.launcher``), named here
too, so a test or a tool imports what it starts a system with from one place."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.exceptions import RedisClusterException, RedisError

from services.cli.embedded import free_port
from services.cli.launcher import SERVICES, System
from shared.config import Settings, load
from shared.redis_client import connect_sync, is_cluster

__all__ = ["FAST", "SERVICES", "System", "bench_with_site", "forget", "system"]

log = logging.getLogger("oee.harness")

# Small delays, so a run of many orders takes seconds.
FAST = {
    "OEE_QUOTE_LATENCY_MS": "20",
    "OEE_EXECUTION_LATENCY_MS": "40-80",
    "OEE_RETRY_BASE_MS": "20",
    "OEE_BLOCK_MS": "200",
    # Audits after a run look up every order's landings on the simulated chain.
    "OEE_FINISHED_ORDER_TTL_S": "3600",
}


@contextmanager
def system(redis_url: str, database_url: str, namespace: str, logs: Path,
           executors: int = 1, **overrides: str) -> Iterator[System]:
    """The services on a free port, with small delays, over a migrated database, stopped
    at the end; then the namespace's keys are deleted."""
    env = dict(os.environ)
    env.update({
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "OEE_NAMESPACE": namespace,
        "PORT": str(free_port()),
        "OEE_SEED": "e2e",
        # Tests of the pipeline act as the one built-in account; tests of keys, ownership
        # and limits turn keys on with OEE_AUTH=required.
        "OEE_AUTH": "off",
        **FAST,
    })
    env.update(overrides)
    logs.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "services.cli", "migrate"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    running = System(env, logs)
    try:
        running.start_all({"executor": executors})
        running.wait_ready()
        yield running
    finally:
        running.stop()
        forget(load(env))


def forget(settings: Settings) -> None:
    """Deletes the run's keys, once its services have stopped, so runs against a shared
    Redis leave nothing behind. A Redis that no longer answers (a test stopped it) is left
    as it is."""
    try:
        cluster = is_cluster(settings.redis_url)
        client = connect_sync(settings.redis_url, cluster)
        try:
            # One key per call: on a cluster the keys live in many slots (a cluster scan
            # covers every primary).
            for key in client.scan_iter(match=f"{settings.namespace}:*", count=1000):
                client.unlink(key)
        finally:
            client.close()
    except (RedisError, RedisClusterException) as error:
        log.warning("could not delete the keys of %s: %s", settings.namespace, error)


def bench_with_site(site: str, env: dict[str, str], bench_args: list[str],
                    scratch: Path) -> int:
    """Runs ``oee bench`` with ``bench_args``, every Python process it starts importing
    ``site`` first (as ``sitecustomize``, from a folder in ``scratch`` put first on
    ``PYTHONPATH``), with ``env`` added to this process's environment; its exit code. The
    measuring tools reach into the spawned services this way."""
    folder = scratch / "site"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(site)
    path = os.pathsep.join([str(folder), *filter(None, [os.environ.get("PYTHONPATH")])])
    ran = subprocess.run(
        [sys.executable, "-m", "services.cli", "bench", *[a for a in bench_args if a != "--"]],
        env={**os.environ, **env, "PYTHONPATH": path}, check=False)
    return ran.returncode


@contextmanager
def collections_paused() -> Iterator[None]:
    """A load generator's cyclic garbage collector off while it measures (``oee bench``,
    ``bench.snipers``, ``bench.capacity``). Its collections stopped it, submits and the
    reading of the log alike, and an open loop then submits what it owes at once: at 2,500
    orders/s a young collection of its 100,000 newest objects every second or so took
    13-87 ms and a middle one every ~26 s about 600 ms, which showed in the engine's
    figures as latency, and in a service that times its reads by the rate orders come
    (``shared.worker.Linger``) as a lull. Reference counting still frees everything outside
    cycles; the cycles wait for the end of the run."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
