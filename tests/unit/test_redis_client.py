"""shared/redis_client.py: the connection's command packing, and finding out whether a URL
names a cluster while Redis does not answer yet."""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import pytest
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import ConnectionError, DataError

from shared import redis_client
from shared.redis_client import Connection, is_cluster

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
