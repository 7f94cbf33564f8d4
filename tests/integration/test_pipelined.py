"""``pipelined``: many commands in one round trip, on a single Redis and on a cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ResponseError

from shared.reading import streams_read
from shared.redis_client import connect, pipelined, read_blocking
from shared.stream import EventStore
from tests.helpers import eventually


async def test_replies_come_in_order_and_an_error_is_raised_after_every_command_ran(
    store: EventStore,
) -> None:
    key = f"{store.settings.namespace}:pipelined"
    replies = await pipelined(store.redis, [("SET", key, "1"), ("INCRBY", key, 2),
                                            ("GET", key)])
    assert replies[1:] == [3, b"3"]

    with pytest.raises(ResponseError, match="not an integer"):
        await pipelined(store.redis, [("INCRBY", key, 1), ("SET", key, "text"),
                                      ("INCRBY", key, 1), ("SET", f"{key}:after", "ran")])
    # The commands around the refused one ran, and the connection answers the next batch.
    assert await pipelined(store.redis, [("GET", key), ("GET", f"{key}:after")]) == [
        b"text", b"ran"]
    await store.redis.delete(key, f"{key}:after")


async def test_a_batch_on_a_connection_the_server_closed_is_sent_again(
    store: EventStore,
) -> None:
    if store.cluster:
        pytest.skip("the single Redis path; a cluster's pipeline heals by itself")
    key = f"{store.settings.namespace}:pipelined-healing"
    client = connect(store.settings.redis_url, cluster=False)
    try:
        # The client's one connection, which the server then closes.
        client_id, _ = await pipelined(client, [("CLIENT", "ID"), ("SET", key, "1")])
        await store.redis.client_kill_filter(_id=client_id)
        assert await pipelined(client, [("INCR", key), ("GET", key)]) == [2, b"2"]
    finally:
        await client.aclose()
        await store.redis.delete(key)


async def test_closing_a_client_closes_the_connections_of_its_pool(store: EventStore) -> None:
    """A store's clients own their pools: a pool's connection left open after ``aclose``
    lingered until collected (an unclosed-socket warning in some later test)."""
    if store.cluster:
        pytest.skip("the single Redis path: the cluster client closes its nodes' connections")
    client = connect(store.settings.redis_url, cluster=False)
    pooled = await client.execute_command("CLIENT", "ID")  # a connection from the pool
    await client.aclose()

    async def gone() -> bool | None:
        listed = await store.redis.execute_command("CLIENT", "LIST", "ID", pooled)
        return True if not listed else None

    await eventually(gone, 5, every_s=0.01)


async def test_nothing_to_send_sends_nothing(store: EventStore) -> None:
    assert await pipelined(store.redis, []) == []


async def test_concurrent_batches_each_get_their_own_replies(store: EventStore) -> None:
    """On a single Redis every task's batch shares one connection: replies are handed back
    in the order the batches were written, an error reply in one batch included."""
    base = f"{store.settings.namespace}:concurrent"

    async def batch(i: int) -> list[Any]:
        key = f"{base}:{i}"
        commands: list[tuple[Any, ...]] = [("SET", key, str(i)), ("INCRBY", key, i)]
        if i % 7 == 0:
            commands.append(("HGET", key, "field"))  # the wrong type: refused
        commands.append(("GET", key))
        try:
            return await pipelined(store.redis, commands)
        except ResponseError as error:
            assert "WRONGTYPE" in str(error)
            return ["refused", await store.redis.get(key)]

    results = await asyncio.gather(*(batch(i) for i in range(300)))
    for i, result in enumerate(results):
        if i % 7 == 0:
            assert result == ["refused", str(2 * i).encode()]
        else:
            assert result[1:] == [2 * i, str(2 * i).encode()]
    await store.redis.delete(*(f"{base}:{i}" for i in range(300)))


async def test_a_command_that_blocks_takes_a_connection_of_its_own(store: EventStore) -> None:
    if store.cluster:
        pytest.skip("the single Redis path: the cluster's pipeline has no shared connection")
    key = f"{store.settings.namespace}:blocks"
    blocked = asyncio.ensure_future(
        pipelined(store.redis, [("BLPOP", key, 5)], own_connection=True))
    try:
        # The shared connection answers while the other one waits.
        assert await pipelined(store.redis, [("RPUSH", key, "x")]) == [1]
        assert await asyncio.wait_for(blocked, 5) == [[key.encode(), b"x"]]
    finally:
        blocked.cancel()
        await store.redis.delete(key)


async def test_blocking_reads_each_wait_on_a_connection_of_their_own(
    store: EventStore,
) -> None:
    """Two reads block at once, and a read cancelled while it blocks leaves nothing in the
    way of the next one. (Each reads after 0-0, so an entry added before its read reaches
    Redis is read all the same.)"""
    if store.cluster:
        pytest.skip("the single Redis path: the cluster client lends its own connections")
    first, second, third = (f"{store.settings.namespace}:{name}"
                            for name in ("first", "second", "third"))

    def read(key: str) -> Any:
        return read_blocking(store.blocking, ("XREAD", "COUNT", 1, "BLOCK", 20_000,
                                              "STREAMS", key, "0-0"))

    async def added(key: str, reading: asyncio.Future[Any], value: str) -> None:
        await store.redis.xadd(key, {"d": value})
        [(stream, [(_, fields)])] = streams_read(await asyncio.wait_for(reading, 5))
        assert (stream, fields) == (key, {b"d": value.encode()})

    waiting_first = asyncio.ensure_future(read(first))
    try:
        await added(second, asyncio.ensure_future(read(second)), "x")
        assert not waiting_first.done()
        waiting_first.cancel()
        # Behind the cancelled read, this one would wait until that read's BLOCK ran out.
        await added(third, asyncio.ensure_future(read(third)), "y")
    finally:
        waiting_first.cancel()
        await store.redis.delete(first, second, third)
