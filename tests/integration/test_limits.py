"""The gateway's shared limits and idempotency keys, against a real Redis."""

from __future__ import annotations

import asyncio
import time

import msgspec
import pytest

from services.gateway.idempotency import (
    Answer,
    Claimed,
    IdempotencyKeys,
    InFlight,
    Mismatch,
    Replay,
    fingerprint,
    is_valid_key,
    order_fingerprint,
)
from services.gateway.limits import Limits
from shared.stream import EventStore
from tests.unit import builders


def limits(store: EventStore, per_minute: int = 60, max_open: int = 1000) -> Limits:
    return Limits(store, per_minute, max_open, 3600)


async def test_an_account_bursts_its_allowance_then_waits(store: EventStore) -> None:
    limit = limits(store, per_minute=60)
    admitted = [await limit.admit("alice", f"order-{i}") for i in range(60)]
    assert all(a.admitted for a in admitted)
    assert [a.rate.remaining for a in admitted[:3]] == [59, 58, 57]
    refused = await limit.admit("alice", "order-60")
    assert not refused.rate.allowed and not refused.admitted
    # One submit a second is the steady rate: the next is at most a second away.
    assert 0 < refused.rate.retry_after_s <= 1.0
    headers = refused.rate.headers()
    assert headers["Retry-After"] == "1"
    assert headers["RateLimit-Policy"] == '"submits";q=60;w=60'
    assert headers["RateLimit"] == '"submits";r=0;t=1'
    # Another account has its own bucket.
    assert (await limit.admit("bob", "order-b")).admitted


async def test_concurrent_submits_never_exceed_the_burst(store: EventStore) -> None:
    limit = limits(store, per_minute=100)
    results = await asyncio.gather(*(limit.admit("carol", f"o{i}") for i in range(300)))
    # Within the second or so this takes, at most one or two more drip in at 100/min.
    assert 100 <= sum(r.admitted for r in results) <= 102


async def test_unfinished_orders_are_capped_until_one_ends(store: EventStore) -> None:
    limit = limits(store, max_open=3)
    orders = [builders.requested(order_id) for order_id in ("a", "b", "c")]
    await store.append(orders)
    for requested in orders:
        assert (await limit.admit("dave", requested.order_id)).admitted
    full = await limit.admit("dave", "d")
    assert not full.open_orders_ok and not full.admitted
    await store.append([builders.failed("b", seq=2, reason="no_route")])
    admitted = await limit.admit("dave", "d")
    # The fourth submit to pass: the refusal took nothing from the rate bucket.
    assert admitted.admitted and admitted.rate.remaining == 60 - 4
    await limit.forget_open_order("dave", "d")
    assert (await limit.admit("dave", "e")).admitted


async def test_an_admitted_order_is_appended_in_the_call_that_admits_it(
        store: EventStore) -> None:
    limit = limits(store, per_minute=1, max_open=2)
    first, second = builders.requested("j"), builders.requested("k")
    # Redis loads the script on its first call, answered NOSCRIPT and sent again.
    assert (await limit.accept("warm", builders.requested("i"))).admitted
    calls_before = await _script_calls(store)
    assert (await limit.accept("frank", first)).admitted
    if not store.cluster:  # a cluster's admission and append are in different slots
        assert await _script_calls(store) - calls_before == 1
    assert [e.type for e in await store.history("j")] == ["OrderRequested"]
    # Over the rate: refused, and nothing appended.
    refused = await limit.accept("frank", second)
    assert not refused.rate.allowed and not refused.admitted
    assert await store.history("k") == []


async def test_an_order_accepted_once_another_ended_is_appended(store: EventStore) -> None:
    limit = limits(store, max_open=1)
    assert (await limit.accept("gina", builders.requested("l"))).admitted
    assert not (await limit.accept("gina", builders.requested("m"))).admitted
    assert await store.history("m") == []
    await store.append([builders.failed("l", seq=2, reason="no_route")])
    assert (await limit.accept("gina", builders.requested("m"))).admitted
    assert [e.type for e in await store.history("m")] == ["OrderRequested"]


async def _script_calls(store: EventStore) -> int:
    """The script calls Redis has run (on a single Redis)."""
    stats = await store.redis.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) if not store.cluster else 0


async def test_an_unfinished_order_counts_for_its_maximum_age_at_most(store: EventStore) -> None:
    limit = limits(store, max_open=2)
    limit.open_order_max_age_ms = 300
    # Open for good: only their age can let a third in.
    await store.append([builders.requested(order_id) for order_id in "fghi"])
    for order_id in "fg":
        assert (await limit.admit("erin", order_id)).admitted
    assert not (await limit.admit("erin", "h")).open_orders_ok
    deadline = time.monotonic() + 5
    while not (admitted := await limit.admit("erin", "h")).admitted:
        assert not admitted.open_orders_ok and time.monotonic() < deadline
        await asyncio.sleep(0.05)
    # Both aged out together; "h" alone counts now.
    assert (await limit.admit("erin", "i")).admitted
    assert not (await limit.admit("erin", "j")).open_orders_ok


async def test_an_idempotency_key_is_claimed_once_and_replays_its_answer(
    store: EventStore,
) -> None:
    keys = IdempotencyKeys(store.redis, store.settings.namespace, ttl_s=60)
    order = fingerprint("SOL", "USDC", 500_000_000, 0.01, "market")
    assert await keys.claim("alice", "retry-1", order) == Claimed()
    assert await keys.claim("alice", "retry-1", order) == InFlight()
    assert await keys.claim("alice", "retry-1", fingerprint("SOL", "USDC", 1, 0.01)) == Mismatch()
    # Scoped per account: bob's "retry-1" is another key.
    assert await keys.claim("bob", "retry-1", order) == Claimed()
    await keys.answer("alice", "retry-1", Answer(202, b'{"orderId":"x"}'))
    assert await keys.claim("alice", "retry-1", order) == Replay(Answer(202, b'{"orderId":"x"}'))
    ttl = await store.redis.ttl(keys._key("alice", "retry-1"))
    assert 50 < ttl <= 60
    await keys.release("bob", "retry-1")
    assert await keys.claim("bob", "retry-1", order) == Claimed()


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "é"])
def test_an_idempotency_key_is_printable_ascii_of_at_most_255(key: str) -> None:
    assert not is_valid_key(key)


def test_a_uuid_is_a_valid_idempotency_key() -> None:
    assert is_valid_key("8e03978e-40d5-43e8-bc93-6894a57f9324")


def test_a_limit_price_is_part_of_the_order_an_idempotency_key_remembers() -> None:
    limit = builders.requested("o-1", order_type="limit", limit_price="150")
    assert order_fingerprint(limit) != order_fingerprint(
        msgspec.structs.replace(limit, limit_price="151"))
    later = msgspec.structs.replace(limit, expires_at=builders.at(9))
    assert order_fingerprint(limit) == order_fingerprint(later)
    assert order_fingerprint(builders.requested("o-1")) == order_fingerprint(
        builders.requested("o-2"))
