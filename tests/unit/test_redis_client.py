"""shared/redis_client.py: the connection's command packing, the client each URL scheme
gets, and finding out whether a URL names a cluster while Redis does not answer yet."""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import ConnectionError, DataError

from shared import redis_client
from shared.redis_client import Client, Connection, UnixConnection, connect, is_cluster

COMMANDS: list[tuple[Any, ...]] = [
    ("PING",),
    ("SET", "key", "value"),
    ("SCRIPT LOAD", "return 1"),  # a name of two words is two arguments
    (b"CLIENT SETINFO", "LIB-NAME", "redis-py"),
    ("EVALSHA", "a" * 40, 2, "{p0.1}:log", "{p0.1}:order:x", 86400, 2.5, b"\x00raw", "é"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_packs_as_redis_py_does(command: tuple[Any, ...]) -> None:
    ours = b"".join(Connection().pack_command(*command))
    assert ours == b"".join(HiredisRespSerializer().pack(*command))
    python = PythonRespSerializer(6000, Connection().encoder.encode)
    assert ours == b"".join(python.pack(*command))


def test_an_argument_redis_cannot_take_is_a_data_error() -> None:
    with pytest.raises(DataError):
        Connection().pack_command("SET", "key", object())


async def test_a_tcp_url_gets_the_lean_client_on_its_host_and_port() -> None:
    client = connect("redis://10.1.2.3:6380/2", cluster=False)
    assert isinstance(client, Client)
    assert client.connection_pool.connection_class is Connection
    assert (client.multiplexed.address, client.multiplexed.db) == (("10.1.2.3", 6380), 2)
    await client.aclose()


async def test_a_unix_url_gets_the_lean_client_on_its_socket() -> None:
    """A ``unix://`` URL's path is where every connection goes, the shared one too (it went
    to localhost:6379 once, and the pool's connections failed to be made)."""
    client = connect("unix:///run/valkey/valkey.sock?db=3", cluster=False)
    assert isinstance(client, Client)
    assert client.connection_pool.connection_class is UnixConnection
    assert (client.multiplexed.address, client.multiplexed.db) == (
        "/run/valkey/valkey.sock", 3)
    assert Connection().pack_command("PING") == UnixConnection().pack_command("PING")
    await client.aclose()


async def test_a_tls_url_keeps_redis_py_s_own_connections() -> None:
    """The lean connections speak plain TCP: a ``rediss://`` URL is left to redis-py's TLS
    connections (it once got a plain one)."""
    client = connect("rediss://10.1.2.3:6380/0", cluster=False)
    assert not isinstance(client, Client)
    assert client.connection_pool.connection_class is aioredis.SSLConnection
    await client.aclose()


def test_a_redis_that_answers_late_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[float] = []

    def detected(url: str) -> bool:
        asked.append(time.monotonic())
        if len(asked) < 3:
            raise ConnectionError("starting")
        return True

    monkeypatch.setattr(redis_client, "_detected", detected)
    assert is_cluster("redis://starting:6379/0", wait_s=5) is True
    assert len(asked) == 3
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(asked))


def test_a_redis_that_never_answers_is_taken_for_a_single_one_after_the_wait(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert is_cluster(url, wait_s=0.3) is False
    assert 0.3 <= time.monotonic() - started < 2.5
    assert f"Redis at {url} does not answer" in caplog.text
