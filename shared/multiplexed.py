"""One connection to a single Redis that every task of a process shares for its round trips.

Redis answers a connection's commands in the order they came, so tasks need not take turns
with a connection: each writes its commands as soon as it has them, and the replies are
handed back in the order the commands were written. No pool lends and takes back a
connection, no timer is armed per command. A round trip of one command cost its caller
199 µs of CPU through a connection of redis-py's pool and 59 µs this way, on 2026-12-06
(``python -m bench.overheads``: ``roundTrip``).

Only for what answers at once: a command that blocks (a blocking read, ``WAIT``) would hold
up every task behind it, and ``WAIT`` counts the writes of its own connection; those go
through redis-py's pool.

When the connection is lost, or a reply is ``socket_timeout`` late, every call waiting on
it fails with ``ConnectionError`` or ``TimeoutError``; the next call connects again.
"""

from __future__ import annotations

import asyncio
import builtins
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import (
    ConnectionError,
    DataError,
    NoScriptError,
    ResponseError,
    TimeoutError,
)


class _Call:
    __slots__ = ("future", "left", "replies", "sent_at")

    def __init__(self, future: asyncio.Future[list[Any]], count: int, sent_at: float) -> None:
        self.future, self.left, self.sent_at = future, count, sent_at
        self.replies: list[Any] = []


class _Protocol(asyncio.Protocol):
    """The socket's side: replies parsed as they arrive and handed to the calls in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.calls: deque[_Call] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        self.watchdog: asyncio.TimerHandle | None = None
        # What the calls of this turn of the loop wrote, sent together at its end.
        self.outgoing: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport's subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        calls = self.calls
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as error:
                self.abort(ConnectionError(f"Redis sent what is not RESP: {error}"))
                return
            if reply is False:
                return
            if not calls:
                self.abort(ConnectionError("Redis sent a reply nobody asked for"))
                return
            call = calls[0]
            call.replies.append(reply)
            call.left -= 1
            if not call.left:
                calls.popleft()
                if not call.future.done():
                    call.future.set_result(call.replies)

    def write(self, loop: asyncio.AbstractEventLoop, packed: bytes) -> None:
        """``packed`` goes out with whatever else is written in this turn of the loop: one
        write, and one wake of Redis, for the round trips that tasks start together."""
        if not self.outgoing:
            loop.call_soon(self._write_out)
        self.outgoing.append(packed)

    def _write_out(self) -> None:
        outgoing, self.outgoing = self.outgoing, []
        if self.lost is None and self.transport is not None:
            self.transport.writelines(outgoing)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def abort(self, error: Exception) -> None:
        self.fail(error)
        if self.transport is not None:
            self.transport.abort()

    def fail(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        while self.calls:
            future = self.calls.popleft().future
            if not future.done():
                future.set_exception(error)


class MultiplexedConnection:
    """``round_trip(commands)``: their replies, sent in one write over the shared connection.
    ``address``: a (host, port) pair, or the path of a Unix socket."""

    def __init__(self, address: tuple[str, int] | str, *, db: int = 0,
                 username: str | None = None, password: str | None = None,
                 socket_timeout: float | None = 5.0, connect_timeout: float = 2.0) -> None:
        self.address, self.db = address, db
        self.where = address if isinstance(address, str) else f"{address[0]}:{address[1]}"
        self.username, self.password = username, password
        self.socket_timeout, self.connect_timeout = socket_timeout, connect_timeout
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def round_trip(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The replies in order; an error reply is returned in its place, not raised."""
        try:
            packed = b"".join([hiredis.pack_command(tuple(command)) for command in commands])
        except TypeError as error:
            raise DataError(error) from error
        protocol = self._protocol
        if (protocol is None or protocol.lost is not None
                or self._loop is not asyncio.get_running_loop()):
            protocol = await self._connected()
        replies = await self._send(protocol, packed, len(commands))
        return [_error(reply) if isinstance(reply, ResponseError) else reply
                for reply in replies]

    def _send(self, protocol: _Protocol, packed: bytes, count: int
              ) -> asyncio.Future[list[Any]]:
        loop = self._loop
        assert loop is not None and protocol.transport is not None
        future: asyncio.Future[list[Any]] = loop.create_future()
        protocol.calls.append(_Call(future, count, loop.time()))
        protocol.write(loop, packed)
        if protocol.watchdog is None and self.socket_timeout is not None:
            protocol.watchdog = loop.call_later(self.socket_timeout, self._check_late, protocol)
        return future

    def _check_late(self, protocol: _Protocol) -> None:
        """One timer for the connection, not one per call: a reply later than
        ``socket_timeout`` means the connection is no good, and every call on it fails."""
        protocol.watchdog = None
        if not protocol.calls or protocol.lost is not None:
            return
        assert self._loop is not None and self.socket_timeout is not None
        due = protocol.calls[0].sent_at + self.socket_timeout
        if due <= self._loop.time():
            protocol.abort(TimeoutError(f"Timeout reading from {self.where}"))
            return
        protocol.watchdog = self._loop.call_at(due, self._check_late, protocol)

    async def _connected(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            # Made in another event loop (a test's earlier one): that one's socket is not
            # this loop's to use.
            self._protocol, self._connecting = None, None
            self._loop = loop
        connecting = self._connecting
        if connecting is None or (connecting.done() and (
                connecting.exception() is not None or connecting.result().lost is not None)):
            # One connection made for all the calls that find none.
            connecting = self._connecting = asyncio.ensure_future(self._connect())
        return await asyncio.shield(connecting)

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                if isinstance(self.address, str):
                    _, protocol = await loop.create_unix_connection(_Protocol, self.address)
                else:
                    _, protocol = await loop.create_connection(_Protocol, *self.address)
        except (OSError, builtins.TimeoutError) as error:
            raise ConnectionError(f"Error connecting to {self.where}: {error}") from error
        # RESP3, as redis-py's own connections speak it: the same reply shapes either way.
        hello: tuple[Any, ...] = ("HELLO", 3)
        if self.password is not None:
            hello += ("AUTH", self.username or "default", self.password)
        setup = [hello]
        if self.db:
            setup.append(("SELECT", self.db))
        packed = b"".join(hiredis.pack_command(command) for command in setup)
        for reply in await self._send(protocol, packed, len(setup)):
            if isinstance(reply, ResponseError):
                protocol.abort(ConnectionError(f"Redis refused the connection: {reply}"))
                raise _error(reply)
        self._protocol = protocol
        return protocol

    async def aclose(self) -> None:
        protocol, self._protocol, self._connecting = self._protocol, None, None
        if protocol is not None and protocol.transport is not None:
            protocol.fail(ConnectionError("Redis connection closed"))
            protocol.transport.close()


def _error(reply: ResponseError) -> ResponseError:
    """The exception redis-py raises for the same reply, where the engine tells them apart."""
    message = str(reply)
    if message.startswith("NOSCRIPT "):
        return NoScriptError(message.removeprefix("NOSCRIPT "))
    return reply
