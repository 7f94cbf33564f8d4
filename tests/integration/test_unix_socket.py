"""A Redis reached through a Unix socket (``REDIS_URL=unix://...``): every way the engine
talks to Redis goes to that socket's server, and to no other."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest
import redis

from services.cli.embedded import _valkey_server
from shared.config import Settings
from shared.events import encode
from shared.redis_client import pipelined, read_blocking
from shared.stream import EventStore
from tests.unit.builders import requested


@pytest.fixture(scope="module")
def socket_path() -> Iterator[str]:
    """A Valkey listening on a Unix socket and on no TCP port. The socket lives in a short
    temporary folder: a socket's path may not be longer than 107 bytes."""
    with tempfile.TemporaryDirectory(prefix="oee-") as folder:
        path = f"{folder}/valkey.sock"
        server = subprocess.Popen(
            [str(_valkey_server()), "--port", "0", "--unixsocket", path, "--dir", folder,
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    redis.Redis(unix_socket_path=path).ping()
                    break
                except redis.ConnectionError:
                    assert server.poll() is None, "valkey-server exited"
                    assert time.monotonic() < deadline, "valkey-server did not answer"
                    time.sleep(0.05)
            yield path
        finally:
            server.terminate()
            server.wait(10)


@pytest.fixture
async def on_socket(socket_path: str, settings: Settings) -> AsyncIterator[EventStore]:
    store = EventStore(msgspec.structs.replace(settings, redis_url=f"unix://{socket_path}?db=0"))
    yield store
    await store.close()


async def test_appends_reads_and_commands_all_go_to_the_socket(
    on_socket: EventStore, store: EventStore, socket_path: str,
) -> None:
    event = requested("unix-1")
    [appended] = await on_socket.append([event])
    assert appended is not None
    key, log = on_socket.order_key("unix-1"), on_socket.log_key(on_socket.layout.of("unix-1"))

    # The shared connection, the pool's, a blocking read's own, and redis-py's methods.
    stored = encode(event)
    assert await pipelined(on_socket.redis, [("HGET", key, "1")]) == [stored]
    assert await pipelined(on_socket.redis, [("HGET", key, "1")], own_connection=True) == [
        stored]
    entries = await read_blocking(on_socket.blocking,
                                  ("XREAD", "COUNT", 10, "BLOCK", 100, "STREAMS", log, "0"))
    assert entries is not None and str(appended) in repr(entries)
    assert (await on_socket.redis.config_get("port"))["port"] == "0"

    # Where the event is: on the socket's server, and not on REDIS_URL's Redis.
    assert redis.Redis(unix_socket_path=socket_path).hexists(key, "1")
    assert not await store.redis.exists(key)
