"""Limit and sniper orders with every service as its own process: fills, cancels, expiry,
launches, and a trigger killed with open orders."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import base58
import httpx
import pytest

from bench.harness import System, system
from shared.events import Confirmed, Expired, Routed, Triggered
from shared.stream import EventStore
from tests.helpers import eventually, stories, watch
from tests.helpers import submit as submit_body

pytestmark = pytest.mark.e2e

LIMIT = {"type": "limit", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5",
         "slippage": 0.01}
# Far above any SOL price the seeded market reaches: never marketable.
NEVER = "100000"


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"e2e-wait-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str, namespace: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    with system(redis_url, database_url, namespace, tmp_path_factory.mktemp("logs"),
                OEE_CLAIM_IDLE_MS="3000") as started:
        yield started


async def submit(client: httpx.AsyncClient, **fields: Any) -> str:
    """The orderId of a limit order, LIMIT with these fields changed."""
    return await submit_body(client, {**LIMIT, **fields})


async def status_of(client: httpx.AsyncClient, order_id: str, wanted: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        order: dict[str, Any] = (await client.get(f"/orders/{order_id}")).json()
        return order if order["status"] == wanted else None
    return await eventually(reached, 20)


async def test_a_marketable_limit_order_fills_at_or_above_its_limit(
        running: System, client: httpx.AsyncClient) -> None:
    order_id = await submit(client, limitPrice="1")
    messages, code = await watch(running, order_id)
    assert [m["status"] for m in messages] == [
        "pending", "open", "routing", "building", "submitted", "confirmed"]
    assert code == 1000
    assert float(messages[-1]["amountOut"]) >= 0.5 * 1


@pytest.mark.cluster
async def test_an_unmarketable_limit_order_stays_open_then_cancels(
        client: httpx.AsyncClient, store: EventStore) -> None:
    before = datetime.now(UTC)
    order_id = await submit(client, limitPrice=NEVER, ttlSeconds=3600)
    after = datetime.now(UTC)
    await status_of(client, order_id, "open")
    await _eventually_listed(client, order_id)
    shown = (await client.get(f"/orders/{order_id}")).json()
    assert shown["type"] == "limit" and shown["limitPrice"] == NEVER
    assert shown["maxPrice"] is None
    expires = datetime.fromisoformat(shown["expiresAt"]) - timedelta(seconds=3600)
    assert before - timedelta(seconds=1) <= expires <= after, shown["expiresAt"]
    # Cancelling twice answers the same; the order never fills.
    for _ in range(2):
        response = await client.delete(f"/orders/{order_id}")
        assert response.status_code == 202, response.text
        assert response.json() == {"orderId": order_id, "status": "cancelled"}
    events = (await stories(store, [order_id]))[order_id]
    assert [e.type for e in events] == ["OrderRequested", "OrderOpened", "Cancelled"]


async def _eventually_listed(client: httpx.AsyncClient, order_id: str) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]] | None:
        page = (await client.get("/orders", params={"status": "open"})).json()["orders"]
        return page if order_id in [o["orderId"] for o in page] else None
    return await eventually(listed, 20)


async def test_cancel_is_409_once_routing_started_and_404_for_unknown_orders(
        client: httpx.AsyncClient, store: EventStore) -> None:
    market = await submit(client, type="market", limitPrice=None)
    await stories(store, [market])
    response = await client.delete(f"/orders/{market}")
    assert response.status_code == 409 and response.json()["error"]["rule"] == "not_open"
    unknown = "01a21435-0000-7000-8000-000000000000"
    response = await client.delete(f"/orders/{unknown}")
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert (error["field"], error["rule"]) == ("orderId", "unknown_order"), error


async def test_an_order_expires_within_a_second_of_its_deadline(
        client: httpx.AsyncClient, store: EventStore) -> None:
    order_id = await submit(client, limitPrice=NEVER, ttlSeconds=2)
    events = (await stories(store, [order_id], timeout_s=15))[order_id]
    assert [e.type for e in events] == ["OrderRequested", "OrderOpened", "Expired"]
    expired = events[-1]
    assert isinstance(expired, Expired)
    late = (expired.at - expired.expires_at).total_seconds()
    assert 0 <= late < 1.0, late


@pytest.mark.cluster
async def test_a_sniper_fires_on_oee_launch_and_the_token_is_listed(
        running: System, client: httpx.AsyncClient, store: EventStore) -> None:
    mint = base58.b58encode(secrets.token_bytes(32)).decode()
    snipers = [await submit(client, type="sniper", tokenOut=mint, limitPrice=None,
                            amount="0.1") for _ in range(3)]
    for order_id in snipers:
        await status_of(client, order_id, "open")
    symbol = "T" + secrets.token_hex(2).upper()
    launch = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "launch", symbol, "--mint", mint,
        "--decimals", "6", "--venue", "raydium", "--price", "0.001", "--liquidity", "500",
        env=running.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await launch.communicate()
    assert launch.returncode == 0, output
    found = await stories(store, snipers)
    fired = [next(e for e in found[o] if isinstance(e, Triggered)) for o in snipers]
    # In submission order, each after the ones before it moved the pool.
    assert [t.pushed for t in fired] == sorted(t.pushed for t in fired)
    assert fired[0].pushed == 0 < fired[1].pushed < fired[2].pushed
    assert all(found[o][-1].type == "Confirmed" for o in snipers)
    # The router takes the route the trigger priced, and the chain executes each sniper
    # against the pool as the ones before it left it: the first gets the best price.
    routed = [next(e for e in found[o] if isinstance(e, Routed)) for o in snipers]
    done = [found[o][-1] for o in snipers]
    assert all(isinstance(c, Confirmed) for c in done)
    assert [r.pushed for r in routed] == [t.pushed for t in fired]
    assert [r.route for r in routed] == [t.fill for t in fired]
    assert [c.amount_out for c in done if isinstance(c, Confirmed)] == [
        r.amount_out for r in routed]
    prices = [c.executed_price for c in done if isinstance(c, Confirmed)]
    assert prices[0] > prices[1] > prices[2]
    # The gateway learns the token another process launched when an order first names it.
    await submit(client, type="market", tokenOut=symbol, limitPrice=None)
    tokens = (await client.get("/tokens")).json()["tokens"]
    assert {"symbol": symbol, "mint": mint, "decimals": 6, "launched": True} in tokens
    order = (await client.get(f"/orders/{snipers[0]}")).json()
    first = done[0]
    assert isinstance(first, Confirmed)
    assert order["status"] == "confirmed"
    assert Decimal(order["amountOut"]).scaleb(6) == first.amount_out  # the token's 6 decimals


async def test_a_killed_trigger_loses_no_open_order_and_fires_none_twice(
        running: System, client: httpx.AsyncClient, store: EventStore) -> None:
    waiting = [await submit(client, limitPrice=NEVER, ttlSeconds=4) for _ in range(20)]
    for order_id in waiting[:3]:
        await status_of(client, order_id, "open")
    running.kill("trigger")
    # Submitted while no trigger runs, and one whose deadline passes while it is down.
    late = [await submit(client, limitPrice=NEVER, ttlSeconds=1) for _ in range(5)]
    fills = [await submit(client, limitPrice="1") for _ in range(5)]
    running.start("trigger", 0)
    found = await stories(store, [*waiting, *late, *fills], timeout_s=40)
    for order_id in [*waiting, *late]:
        assert found[order_id][-1].type == "Expired", found[order_id]
    for order_id in fills:
        types = [e.type for e in found[order_id]]
        assert types.count("Triggered") == 1 and types[-1] == "Confirmed", types
    expired_late = [e for o in late for e in found[o] if isinstance(e, Expired)]
    assert len(expired_late) == len(late) and all(e.at >= e.expires_at for e in expired_late)
