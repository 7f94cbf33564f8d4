"""The shared connection's failures, against a server that misbehaves on purpose."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from redis.exceptions import ConnectionError, NoScriptError, ResponseError, TimeoutError

from shared.multiplexed import MultiplexedConnection

Reply = Callable[[bytes], bytes]


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, list[Reply]]]:
    """A server that answers each chunk it reads with ``replies[0](chunk)``; an empty
    answer sends nothing back; HELLO, the connection's first command, gets +OK."""
    replies: list[Reply] = []
    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while data := await reader.read(65536):
            if data.startswith(b"*2\r\n$5\r\nHELLO"):
                writer.write(b"+OK\r\n")
                data = data[data.index(b"\r\n3\r\n") + 5 :]
            if data and (answer := replies[0](data)):
                writer.write(answer)
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    yield port, replies
    listening.close()
    # A connection the test left open is closed here, not when the loop is gone.
    for writer in writers:
        writer.close()
    await listening.wait_closed()


async def test_a_reply_later_than_the_timeout_fails_the_waiting_calls(
    server: tuple[int, list[Reply]],
) -> None:
    port, replies = server
    replies.append(lambda _: b"")  # never answers
    connection = MultiplexedConnection(("127.0.0.1", port), socket_timeout=0.2)
    first = asyncio.ensure_future(connection.round_trip([("PING",)]))
    second = asyncio.ensure_future(connection.round_trip([("PING",)]))
    for call in (first, second):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(call, 5)
    # The next call connects again.
    replies[0] = lambda _: b"+PONG\r\n"
    assert await asyncio.wait_for(connection.round_trip([("PING",)]), 5) == [b"PONG"]
    await connection.aclose()


async def test_error_replies_stand_in_their_place(server: tuple[int, list[Reply]]) -> None:
    port, replies = server
    replies.append(lambda _: b"+OK\r\n-NOSCRIPT No matching script.\r\n-ERR no\r\n:1\r\n")
    connection = MultiplexedConnection(("127.0.0.1", port))
    ok, missing, refused, one = await connection.round_trip(
        [("SET", "k", "v"), ("EVALSHA", "x", 0), ("GET", "k"), ("DEL", "k")])
    assert (ok, one) == (b"OK", 1)
    assert isinstance(missing, NoScriptError) and isinstance(refused, ResponseError)
    await connection.aclose()


async def test_a_reply_nobody_asked_for_closes_the_connection(
    server: tuple[int, list[Reply]],
) -> None:
    port, replies = server
    replies.append(lambda _: b"+PONG\r\n+PONG\r\n")
    connection = MultiplexedConnection(("127.0.0.1", port))
    assert await connection.round_trip([("PING",)]) == [b"PONG"]
    first = connection._protocol
    assert first is not None and isinstance(first.lost, ConnectionError)
    # Whatever the stray reply belonged to, nothing later is matched with it: the next
    # call goes down a new connection.
    replies[0] = lambda _: b"+PONG\r\n"
    assert await connection.round_trip([("PING",)]) == [b"PONG"]
    assert connection._protocol is not first
    await connection.aclose()


async def test_no_server_is_a_connection_error() -> None:
    listening = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()
    with pytest.raises(ConnectionError):
        await MultiplexedConnection(("127.0.0.1", port)).round_trip([("PING",)])


async def test_round_trips_started_in_one_turn_of_the_loop_go_out_in_one_write(
    server: tuple[int, list[Reply]],
) -> None:
    port, replies = server
    replies.append(lambda chunk: b"+PONG\r\n" * chunk.count(b"PING"))
    connection = MultiplexedConnection(("127.0.0.1", port))
    assert await connection.round_trip([("PING",)]) == [b"PONG"]  # connected
    protocol = connection._protocol
    assert protocol is not None and protocol.transport is not None
    writes: list[bytes] = []
    transport = protocol.transport

    class Counted:
        def write(self, data: bytes) -> None:
            writes.append(data)
            transport.write(data)

        def writelines(self, lines: list[bytes]) -> None:
            self.write(b"".join(lines))

    protocol.transport = Counted()  # type: ignore[assignment]
    answers = await asyncio.wait_for(asyncio.gather(
        connection.round_trip([("PING",)]),
        connection.round_trip([("PING",), ("PING",)]),
        connection.round_trip([("PING",)]),
    ), 5)
    assert answers == [[b"PONG"], [b"PONG", b"PONG"], [b"PONG"]]
    assert writes == [b"*1\r\n$4\r\nPING\r\n" * 4]
    protocol.transport = transport
    await connection.aclose()
