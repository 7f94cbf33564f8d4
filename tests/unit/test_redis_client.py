"""shared/redis_client.py: the connection's command packing."""

from __future__ import annotations

from typing import Any

import pytest
from redis.connection import HiredisRespSerializer, PythonRespSerializer
from redis.exceptions import DataError

from shared.redis_client import Connection

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
