"""The four services as real processes, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from services.embedded import free_port

SERVICES = ("persister", "router", "executor", "gateway")


class System:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.processes: dict[str, list[subprocess.Popen[bytes]]] = {}

    def start(self, service: str) -> subprocess.Popen[bytes]:
        index = len(self.processes.get(service, []))
        log = (self.logs / f"{service}-{index}.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", service],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.processes.setdefault(service, []).append(process)
        return process

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for service, processes in self.processes.items():
                for process in processes:
                    if process.poll() is not None:
                        raise RuntimeError(f"{service} exited early; see {self.logs}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready after {timeout_s}s; see {self.logs}")

    def stop(self) -> None:
        everything = [p for ps in self.processes.values() for p in ps]
        for process in everything:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in everything:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in self.logs.glob("*.log"))


@contextmanager
def system(redis_url: str, database_url: str, namespace: str, logs: Path,
           executors: int = 1, **overrides: str) -> Iterator[System]:
    env = dict(os.environ)
    env.update({
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "OEE_NAMESPACE": namespace,
        "PORT": str(free_port()),
        "OEE_SEED": "e2e",
        "OEE_QUOTE_LATENCY_MS": "20",
        "OEE_EXECUTION_LATENCY_MS": "40-80",
        "OEE_RETRY_BASE_MS": "20",
        "OEE_BLOCK_MS": "200",
        "OEE_LOG_LEVEL": "INFO",
    })
    env.update(overrides)
    logs.mkdir(parents=True, exist_ok=True)
    running = System(env, logs)
    try:
        for service in SERVICES:
            for _ in range(executors if service == "executor" else 1):
                running.start(service)
        running.wait_ready()
        yield running
    finally:
        running.stop()
