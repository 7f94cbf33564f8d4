"""Running the services as processes: for ``oee up``, and through ``bench.harness`` for the
load generators and the end-to-end tests.

One ``System`` owns every process it started, can kill and restart any of them, and stops
them all gracefully: the gateways first, so no order arrives while the workers finish.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from services.cli.embedded import free_port

SERVICES = ("persister", "router", "trigger", "executor", "gateway")


class StartFailed(RuntimeError):
    """A process exited before the system was ready."""

    def __init__(self, service: str, code: int, logs: Path | None) -> None:
        where = f"; see {logs}" if logs else ""
        super().__init__(f"{service} exited with code {code} while starting{where}")
        self.service, self.code = service, code


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

    def _output(self, service: str,
                index: int) -> contextlib.AbstractContextManager[IO[bytes] | None]:
        """The process's log file, to be closed once the process has it."""
        if self.logs is None:
            return contextlib.nullcontext()
        return (self.logs / f"{service}-{index}.log").open("ab")

    def start(self, service: str, index: int | None = None) -> subprocess.Popen[bytes]:
        """Start one more process of ``service``, or replace the one at ``index``."""
        processes = self.processes.setdefault(service, [])
        slot = len(processes) if index is None else index
        env = self.env
        if service != "gateway":
            port = self.metrics_ports.setdefault((service, slot), free_port())
            env = {**env, "OEE_METRICS_PORT": str(port)}
        with self._output(service, slot) as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", service],
                env=env, stdout=output, stderr=subprocess.STDOUT,
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
        """The gateway answers /readyz, and every other process listens on its /metrics
        port: each has started."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                if response.status != 200:
                    return False
        except OSError:
            return False
        return all(_listening(port) for port in self.metrics_ports.values())

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until the system is ready (``is_ready``); raises StartFailed as soon as any
        process has exited, TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout_s
        while not self.is_ready():
            for service, processes in self.processes.items():
                for process in processes:
                    if (code := process.poll()) is not None:
                        raise StartFailed(service, code, self.logs)
            if time.monotonic() > deadline:
                raise TimeoutError(f"the gateway was not ready within {timeout_s:g} s"
                                   + (f"; see {self.logs}" if self.logs else ""))
            time.sleep(0.05)

    def stop(self, timeout_s: float = 40.0) -> None:
        """SIGTERM to the gateways, then, once they have stopped (or half of ``timeout_s``
        has passed), to every other process; whatever still runs at ``timeout_s`` is
        killed: an order it held is claimed by another process, or by itself restarted."""
        began = time.monotonic()
        for service in reversed(SERVICES):
            for process in self.processes.get(service, []):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            if service == "gateway":
                self._wait(self.processes.get(service, []), began + timeout_s / 2)
        self._wait([p for ps in self.processes.values() for p in ps], began + timeout_s)

    @staticmethod
    def _wait(processes: list[subprocess.Popen[bytes]], deadline: float) -> None:
        for process in processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False
