"""Connecting to Redis: a single server or any node of a Redis Cluster, detected.

Connections heal: a command that meets a dead connection (after a restart, a failover or a
resharding) is sent again on a fresh one, a few times within a fraction of a second. Every
command the engine sends is safe to repeat (appends are idempotent per (order, seq), reads
change nothing, acknowledgements are idempotent), and the bound keeps a Redis that is
really down an error, answered 503, not a hang.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import math
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError, DataError, RedisError, ResponseError, TimeoutError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_fixed,
)

from shared.multiplexed import MultiplexedConnection

log = logging.getLogger(__name__)

# Three more tries, 50, 100 and 200 ms apart: a stale connection is replaced at once, and a
# Redis that does not answer for 0.35 s is reported down.
RETRIES = 3
_HEALING = (ConnectionError, TimeoutError)


class _PackedByHiredis:
    """Packs commands with hiredis, as redis-py's blocking client does. Its asyncio client
    packs them in Python (redis-py issue #4176), which cost the executor a tenth of its
    time: an append carries eight arguments per event. Unlike redis-py's hiredis packer it
    makes no pass over the arguments for memoryviews, which the engine never sends: that
    pass alone was about 40% of packing a large append."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # A command name may hold words of its own ("SCRIPT LOAD"): each is an argument.
        name = args[0]
        if isinstance(name, str) or b" " in name:
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as error:
            raise DataError(error) from error


class Connection(_PackedByHiredis, aioredis.Connection):
    """A pool's connection over TCP (``redis://``)."""


class UnixConnection(_PackedByHiredis, aioredis.UnixDomainSocketConnection):
    """A pool's connection over a Unix socket (``unix://``)."""


# The URL schemes whose connections the engine makes lean (``Client``). ``rediss://`` (TLS)
# keeps redis-py's own client and connections.
_LEAN: dict[str, type[aioredis.Connection | aioredis.UnixDomainSocketConnection]] = {
    "redis": Connection, "unix": UnixConnection}


class Client(aioredis.Redis):
    """redis-py's client for a single Redis, with lean connections beside its pool
    (``shared.multiplexed``): one that every task shares for ``pipelined`` round trips,
    and one for each blocking read in progress (``read_blocking``)."""

    def __init__(self, *, connection_pool: aioredis.ConnectionPool) -> None:
        super().__init__(connection_pool=connection_pool)
        kwargs = connection_pool.connection_kwargs
        address = kwargs.get("path") or (kwargs.get("host", "localhost"),
                                         int(kwargs.get("port", 6379)))
        self._connection_of = functools.partial(
            MultiplexedConnection, address, db=int(kwargs.get("db", 0)),
            username=kwargs.get("username"), password=kwargs.get("password"),
            socket_timeout=kwargs.get("socket_timeout"),
            connect_timeout=kwargs.get("socket_connect_timeout") or 2.0)
        self.multiplexed = self._connection_of()
        # Connections for blocking reads: one per read in progress, kept for the next.
        self._idle: list[MultiplexedConnection] = []
        self._lent: set[MultiplexedConnection] = set()

    async def alone(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The replies to ``commands`` on a connection no other call uses meanwhile; the
        first error reply is raised."""
        connection = self._idle.pop() if self._idle else self._connection_of()
        self._lent.add(connection)
        try:
            replies = await _multiplexed(connection, commands)
        except BaseException:
            # Cancelled, maybe, with a reply still to come: the next call must not wait
            # behind it.
            self._lent.discard(connection)
            await connection.aclose()
            raise
        self._lent.discard(connection)
        self._idle.append(connection)
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        for connection in [self.multiplexed, *self._idle, *self._lent]:
            await connection.aclose()
        self._idle.clear()
        await super().aclose(close_connection_pool)


async def read_blocking(redis: aioredis.Redis, command: Sequence[Any], *,
                        first: Sequence[Sequence[Any]] = ()) -> Any:
    """The reply to a command that may block (``XREAD``, ``XREADGROUP`` with ``BLOCK``), as
    the protocol gives it, on a connection of its own: on a single Redis one of the
    client's lean connections (``Client.alone``), lent and taken back without a pool's
    locks and timers; on a cluster, through redis-py's client, which finds the node.
    ``first``: commands that go ahead of it, in the same round trip on a single Redis."""
    if isinstance(redis, Client):
        replies = await redis.alone([*first, command])
        return replies[-1]
    await pipelined(redis, first)
    return await redis.execute_command(*command)  # type: ignore[no-untyped-call]


def _retry() -> Retry:
    return Retry(ExponentialBackoff(cap=0.2, base=0.05), RETRIES)


@functools.cache
def _detected(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
    try:
        info: Any = client.info("cluster")
        return bool(int(info.get("cluster_enabled", 0)))
    finally:
        client.close()


def is_cluster(url: str, wait_s: float = 2.0) -> bool:
    """Whether ``url`` names a node of a Redis Cluster. Asked once per URL; while Redis
    does not answer (for ``wait_s``), a single Redis is assumed, and asked again next time."""
    asking = Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(0.1),
                      retry=retry_if_exception_type(RedisError),
                      retry_error_callback=_single_while_unanswered)
    answer: bool = asking(_detected, url)
    return answer


def _single_while_unanswered(state: RetryCallState) -> bool:
    error = state.outcome.exception() if state.outcome else None
    log.warning("Redis at %s does not answer (%s); assuming a single Redis", state.args[0],
                error)
    return False


def connect(url: str, *, read_timeout_s: float | None = 5.0,
            cluster: bool | None = None) -> aioredis.Redis:
    """A client for ``url``: redis-py's cluster client when it names a cluster node (it
    follows MOVED and ASK redirects and failovers), else a pool that makes a burst of
    commands wait for a free connection instead of failing with "too many connections".

    The cluster client is returned as ``aioredis.Redis``: it has the same command methods,
    and code written once serves both."""
    if cluster is None:
        cluster = is_cluster(url)
    if cluster:
        client = RedisCluster.from_url(
            url, socket_timeout=read_timeout_s, socket_connect_timeout=2.0,
            health_check_interval=30, retry=_retry(), retry_on_error=list(_HEALING),
            max_connections=256,
        )
        _parse_stream_reads_locally(client)
        return cast(aioredis.Redis, client)
    lean = _LEAN.get(urlsplit(url).scheme)
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=64,
        timeout=read_timeout_s,
        socket_timeout=read_timeout_s,
        socket_connect_timeout=2.0,
        health_check_interval=30,
        retry=_retry(),
        retry_on_error=list(_HEALING),
        # One for every connection: left out, each new connection looks up redis-py's
        # version in the installed packages' metadata, which a burst of them pays for.
        driver_info=DriverInfo(),
        **({"connection_class": lean} if lean else {}),
    )
    # The client owns its pool: closing it closes the pool's connections too.
    if lean:
        return Client.from_pool(pool)
    return aioredis.Redis.from_pool(pool)


async def pipelined(redis: aioredis.Redis, commands: Sequence[Sequence[Any]], *,
                    own_connection: bool = False) -> list[Any]:
    """The replies to ``commands``, sent together in one round trip, as the protocol gives
    them (a hash is a dict under RESP3, a flat list under RESP2); the first error reply is
    raised once every reply is read. A dead connection is replaced and the batch sent
    again, as a single command would be: every command the engine sends is safe to
    repeat.

    On a single Redis, the commands go down the connection every task shares
    (``Client``), with no connection lent from a pool and no timer armed per reply
    (``shared.multiplexed``). A cluster's own pipeline sends each command to its node.

    ``own_connection``: the commands go down a connection of their own from the pool: one
    of them may block, or counts its own connection's writes (``WAIT``)."""
    if not commands:
        return []
    if isinstance(redis, Client) and not own_connection:
        replies = await _multiplexed(redis.multiplexed, commands)
    elif isinstance(redis, RedisCluster):
        async with redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            return list(await pipe.execute())
    else:
        replies = await _pooled(redis, commands)
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies


async def _multiplexed(connection: MultiplexedConnection,
                       commands: Sequence[Sequence[Any]]) -> list[Any]:
    """As the pool's connections retry: a lost connection is made again, three more tries
    50, 100 and 200 ms apart."""
    for failures in range(RETRIES + 1):
        try:
            return await connection.round_trip(commands)
        except _HEALING:
            if failures == RETRIES:
                raise
            await asyncio.sleep(min(0.2, 0.05 * 2**failures))
    raise AssertionError("unreachable")


async def _pooled(redis: aioredis.Redis, commands: Sequence[Sequence[Any]]) -> list[Any]:
    pool = redis.connection_pool
    connection: aioredis.Connection = await pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        replies: list[Any] = await connection.retry.call_with_retry(
            lambda: _round_trip(connection, commands),
            lambda _error: connection.disconnect())
    finally:
        await pool.release(connection)
    return replies


async def _round_trip(connection: aioredis.Connection,
                      commands: Sequence[Sequence[Any]]) -> list[Any]:
    await connection.send_packed_command(connection.pack_commands(commands))
    replies: list[Any] = []
    try:
        # One deadline for the whole batch. A reply cut short leaves the connection
        # closed (redis-py closes it on any error while reading).
        async with asyncio.timeout(connection.socket_timeout):
            for _ in commands:
                try:
                    replies.append(await connection.read_response(timeout=math.inf))
                except ResponseError as error:
                    replies.append(error)
    except builtins.TimeoutError as error:
        where = getattr(connection, "path", "") or f"{connection.host}:{connection.port}"
        raise TimeoutError(f"Timeout reading from {where}") from error
    return replies


_STREAM_READS = ("XREAD", "XREADGROUP")


def _parse_stream_reads_locally(client: RedisCluster) -> None:
    """redis-py's cluster client finds the keys of a command whose keys move (XREAD,
    XREADGROUP) by asking a node, ``COMMAND GETKEYS``, before every call: a second round
    trip for every read, and most of an idle process's calls. Their keys are the first
    half of what follows ``STREAMS``."""
    parser: Any = client.commands_parser
    ask_a_node = parser.get_keys

    async def get_keys(*args: Any) -> tuple[Any, ...] | None:
        if str(args[0]).upper() in _STREAM_READS:
            words = [(a.decode() if isinstance(a, bytes) else str(a)).upper() for a in args]
            if "STREAMS" in words:
                rest = args[words.index("STREAMS") + 1 :]
                return tuple(rest[: len(rest) // 2])
        keys: tuple[Any, ...] | None = await ask_a_node(*args)
        return keys

    parser.get_keys = get_keys


def connect_sync(url: str, cluster: bool) -> redis.Redis:
    """A blocking client, for the few checks made before the event loop runs."""
    if cluster:
        return cast(redis.Redis, redis.RedisCluster.from_url(url, socket_timeout=5))
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
