"""Running the services as processes: for ``oee up``, ``oee soak`` and the end-to-end tests.

One ``System`` owns every process it started, can kill and restart any of them, and stops
them all gracefully: the gateways first, so no order arrives while the workers finish.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from redis.exceptions import RedisClusterException, RedisError

from services.cli.embedded import free_port
from shared.config import Settings, load
from shared.redis_client import connect_sync, is_cluster

log = logging.getLogger("oee.launcher")

SERVICES = ("persister", "router", "trigger", "executor", "gateway")


class System:
    def __init__(self, env: Mapping[str, str], logs: Path | None = None) -> None:
        self.env = dict(env)
        self.logs = logs
        self.port = int(self.env.get("PORT") or 8000)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {}
        # Each worker process's /metrics port (the gateway's is its API port); a restarted
        # process keeps its slot's port.
        self.metrics_ports: dict[tuple[str, int], int] = {}

    def _output(self, service: str, index: int) -> IO[bytes] | None:
        if self.logs is None:
            return None
        return (self.logs / f"{service}-{index}.log").open("ab")

    def start(self, service: str, index: int | None = None) -> subprocess.Popen[bytes]:
        """Start one more process of ``service``, or replace the one at ``index``."""
        processes = self.processes.setdefault(service, [])
        slot = len(processes) if index is None else index
        env = self.env
        if service != "gateway":
            port = self.metrics_ports.setdefault((service, slot), free_port())
            env = {**env, "OEE_METRICS_PORT": str(port)}
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", service],
            env=env, stdout=self._output(service, slot), stderr=subprocess.STDOUT,
        )
        if index is None:
            processes.append(process)
        else:
            processes[index] = process
        return process

    def start_all(self, counts: Mapping[str, int]) -> None:
        for service in SERVICES:
            for _ in range(counts.get(service, 1)):
                self.start(service)

    def metrics_urls(self) -> dict[str, str]:
        """Every process's /metrics, by ``service-slot``."""
        urls = {f"gateway-{slot}": f"{self.url}/metrics"
                for slot in range(len(self.processes.get("gateway", [])))}
        urls |= {f"{service}-{slot}": f"http://127.0.0.1:{port}/metrics"
                 for (service, slot), port in sorted(self.metrics_ports.items())}
        return urls

    def kill(self, service: str, index: int = 0) -> None:
        """kill -9: no chance to finish or hand anything back."""
        process = self.processes[service][index]
        process.kill()
        process.wait()

    def restart_dead(self) -> list[str]:
        """Start again every process that exited; returns which services."""
        restarted = []
        for service, processes in self.processes.items():
            for index, process in enumerate(processes):
                if process.poll() is not None:
                    self.start(service, index)
                    restarted.append(service)
        return restarted

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            for service, processes in self.processes.items():
                if any(p.poll() is not None for p in processes):
                    raise RuntimeError(f"{service} exited early; see {self.logs}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gateway not ready after {timeout_s}s; see {self.logs}")
            time.sleep(0.05)

    def stop(self, timeout_s: float = 40.0) -> None:
        for service in reversed(SERVICES):
            for process in self.processes.get(service, []):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            if service == "gateway":
                self._wait(self.processes.get(service, []), timeout_s)
        self._wait([p for ps in self.processes.values() for p in ps], timeout_s)

    @staticmethod
    def _wait(processes: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self) -> str:
        if self.logs is None:
            return ""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.logs.glob("*.log"))


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
