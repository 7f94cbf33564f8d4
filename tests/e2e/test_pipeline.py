"""The whole system as its processes, driven over HTTP and WebSocket like a client would."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from bench.harness import System, system
from shared.events import Built, Confirmed, Rerouted, Submitted
from shared.redis_client import connect
from shared.stream import EventStore
from tests.helpers import HAPPY, ORDER, drain, eventually, stories, submit, watch

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"e2e-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str, namespace: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    # Slow enough that a subscriber can attach while an order is in flight.
    with system(redis_url, database_url, namespace, logs,
                OEE_EXECUTION_LATENCY_MS="400-600") as started:
        yield started


@pytest.mark.cluster
async def test_an_order_over_http_streams_every_status_once_in_order(
    running: System, client: httpx.AsyncClient
) -> None:
    response = await client.post("/orders/execute", json=ORDER)
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending"
    assert body["stream"] == f"/orders/execute?orderId={body['orderId']}"
    messages, code = await watch(running, body["orderId"])
    assert [m["status"] for m in messages] == HAPPY
    assert code == 1000
    assert all(m["orderId"] == body["orderId"] and m["timestamp"] for m in messages)
    assert "routedDex" not in messages[0]
    assert all(m["routedDex"] in ("raydium", "meteora") for m in messages[1:])
    assert messages[3]["txHash"] == messages[4]["txHash"]
    assert len(messages[4]["txHash"]) in (87, 88)
    confirmed = messages[4]
    assert confirmed["amountIn"] == "0.5"
    assert float(confirmed["amountOut"]) >= float(confirmed["minAmountOut"])
    assert confirmed["executedPrice"] > 0


@pytest.mark.cluster
async def test_one_websocket_submits_and_watches(running: System) -> None:
    async with websockets.connect(f"{running.ws_url}/orders/execute") as ws:
        await ws.send(json.dumps({**ORDER, "tokenIn": "USDC", "tokenOut": "SOL", "amount": "10"}))
        messages = await drain(ws)
        assert ws.close_code == 1000
    assert [m["status"] for m in messages] == HAPPY
    assert len({m["orderId"] for m in messages}) == 1
    confirmed = messages[-1]
    assert confirmed["amountIn"] == "10" and float(confirmed["amountOut"]) >= float(
        confirmed["minAmountOut"]) > 0


@pytest.mark.cluster
async def test_a_late_subscriber_gets_the_whole_history(
    running: System, client: httpx.AsyncClient, store: EventStore
) -> None:
    order_id = await submit(client)
    await stories(store, [order_id])
    messages, code = await watch(running, order_id)
    assert [m["status"] for m in messages] == HAPPY and code == 1000


@pytest.mark.cluster
async def test_subscribers_attaching_mid_flight_miss_nothing(
    running: System, client: httpx.AsyncClient, store: EventStore
) -> None:
    order_id = await submit(client)
    early = asyncio.create_task(watch(running, order_id))

    async def reached(kind: type) -> bool | None:
        return True if any(isinstance(e, kind) for e in await store.history(order_id)) else None

    await eventually(lambda: reached(Built), 10, every_s=0.005)
    after_built = asyncio.create_task(watch(running, order_id))
    await eventually(lambda: reached(Submitted), 10, every_s=0.005)
    # Confirmation takes 300-450 ms from here: this subscriber attaches in flight.
    in_flight = await store.history(order_id)
    assert not in_flight[-1].is_terminal
    after_submitted = asyncio.create_task(watch(running, order_id))
    for task in (early, after_built, after_submitted):
        messages, code = await task
        assert [m["status"] for m in messages] == HAPPY and code == 1000


@pytest.mark.cluster
async def test_a_hundred_orders_all_confirm_with_at_most_ten_executing(
    running: System, client: httpx.AsyncClient, store: EventStore, database_url: str
) -> None:
    # A wide slippage: the market drifts over the seconds the hundred take, and an order
    # routed again after a slippage failure frees its slot while its span goes on.
    body = {**ORDER, "slippage": 0.2}
    order_ids = await asyncio.gather(*(submit(client, body) for _ in range(100)))
    found = await stories(store, order_ids, timeout_s=60)
    assert all(story[-1].type == "Confirmed" for story in found.values())
    assert all(not any(isinstance(e, Rerouted) for e in story) for story in found.values())
    assert max_overlap(found.values()) == 10

    async def projected() -> bool | None:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            cursor = await conn.execute(
                "SELECT count(*) FROM orders WHERE order_id = ANY(%s) AND status = 'confirmed'",
                (list(order_ids),))
            row = await cursor.fetchone()
            return True if row and row[0] == 100 else None

    await eventually(projected, 30)


def max_overlap(stories: Any) -> int:
    edges = []
    for story in stories:
        built = next(e for e in story if isinstance(e, Built))
        edges += [(built.at, 1), (story[-1].at, -1)]
    current = peak = 0
    for _, step in sorted(edges):
        current += step
        peak = max(peak, current)
    return peak


BAD_BODIES: list[tuple[str, bytes | dict[str, Any] | list[Any], int, str, str]] = [
    ("malformed JSON", b'{"tokenIn": "SOL",', 400, "body", "json"),
    ("not an object", [1, 2], 400, "body", "object"),
    ("missing amount", {"tokenIn": "SOL", "tokenOut": "USDC", "slippage": 0.01},
     400, "amount", "required"),
    ("unknown field", {**ORDER, "slipage": 0.01}, 400, "slipage", "unknown_field"),
    ("unknown tokenIn", {**ORDER, "tokenIn": "DOGE"}, 400, "tokenIn", "unknown_token"),
    ("unknown tokenOut", {**ORDER, "tokenOut": "XYZ"}, 400, "tokenOut", "unknown_token"),
    ("same token", {**ORDER, "tokenOut": "SOL"}, 400, "tokenOut", "distinct_tokens"),
    ("zero amount", {**ORDER, "amount": 0}, 400, "amount", "positive"),
    ("negative amount", {**ORDER, "amount": -1}, 400, "amount", "positive"),
    ("NaN amount", {**ORDER, "amount": "NaN"}, 400, "amount", "finite"),
    ("infinite amount", {**ORDER, "amount": "Infinity"}, 400, "amount", "finite"),
    ("too many decimals", {**ORDER, "amount": "0.0000000001"}, 400, "amount", "decimals"),
    ("amount as a list", {**ORDER, "amount": [1]}, 400, "amount", "type"),
    ("zero slippage", {**ORDER, "slippage": 0}, 400, "slippage", "range"),
    ("slippage above 0.5", {**ORDER, "slippage": 0.51}, 400, "slippage", "range"),
    ("stop order", {**ORDER, "type": "stop"}, 400, "type", "order_type"),
    ("body too large", {**ORDER, "pad": "x" * 20_000}, 413, "body", "size"),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("case", "body", "status", "field", "rule"), BAD_BODIES,
                         ids=[c[0] for c in BAD_BODIES])
async def test_bad_input_is_refused_and_never_reaches_the_stream(
    client: httpx.AsyncClient, store: EventStore,
    case: str, body: Any, status: int, field: str, rule: str,
) -> None:
    before = await log_length(store)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/orders/execute", content=content,
                                 headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["field"], error["rule"]) == (field, rule), error
    assert error["message"]
    assert await log_length(store) == before


async def test_unbuilt_order_types_are_refused_with_the_types_that_exist(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/orders/execute", json={**ORDER, "type": "stop"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["field"], error["rule"]) == ("type", "order_type")
    assert all(kind in error["message"] for kind in ("market", "limit", "sniper"))


@pytest.mark.parametrize(("first_message", "field", "rule"), [
    ('{"tokenIn": "SOL"', "body", "json"),
    (json.dumps({**ORDER, "amount": 0}), "amount", "positive"),
    # Too large: still our error, not a cut-off.
    (json.dumps({**ORDER, "pad": "x" * 100_000}), "message", "size"),
], ids=["malformed JSON", "zero amount", "too large"])
async def test_bad_input_over_websocket_gets_an_error_then_a_policy_close(
    running: System, store: EventStore, first_message: str, field: str, rule: str
) -> None:
    before = await log_length(store)
    async with websockets.connect(f"{running.ws_url}/orders/execute") as ws:
        await ws.send(first_message)
        messages = await drain(ws)
        assert ws.close_code == 1008
    [message] = messages
    assert (message["error"]["field"], message["error"]["rule"]) == (field, rule), message
    assert message["error"]["message"]
    assert await log_length(store) == before


@pytest.mark.cluster
@pytest.mark.parametrize("order_id", ["01a21435-0000-7000-8000-000000000000", "not-an-id"])
async def test_unknown_orders_are_404_and_a_policy_close(
    running: System, client: httpx.AsyncClient, order_id: str
) -> None:
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/events"):
        response = await client.get(path)
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert (error["field"], error["rule"]) == ("orderId", "unknown_order"), error
        assert order_id in error["message"]
    messages, code = await watch(running, order_id)
    assert code == 1008 and [m["error"]["rule"] for m in messages] == ["unknown_order"]


async def log_length(store: EventStore) -> int:
    """Entries in the log, every partition."""
    return sum([await store.redis.xlen(key) for key in store.layout.logs()])


@pytest.mark.cluster
async def test_order_state_events_and_listing(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    order_ids = [await submit(client) for _ in range(3)]
    found = await stories(store, order_ids)
    order_id, story = order_ids[0], found[order_ids[0]]
    confirmed = story[-1]
    assert isinstance(confirmed, Confirmed)
    order = (await client.get(f"/orders/{order_id}")).json()
    assert (order["orderId"], order["status"], order["amount"]) == (order_id, "confirmed", "0.5")
    assert order["txHash"] == confirmed.tx_hash
    events = (await client.get(f"/orders/{order_id}/events")).json()["events"]
    assert [e["type"] for e in events] == [
        "OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert times == sorted(times) == [e.at for e in story]
    assert len(events[1]["quotes"]) == 2 and events[1]["reason"]

    # Newest first: these three are the newest orders, once PostgreSQL has them.
    newest = sorted(order_ids, reverse=True)

    async def listed() -> bool | None:
        page = (await client.get("/orders", params={"status": "confirmed", "limit": 3})).json()
        return True if [o["orderId"] for o in page["orders"]] == newest else None

    await eventually(listed, 20)
    first = (await client.get("/orders", params={"status": "confirmed", "limit": 2})).json()
    assert [o["orderId"] for o in first["orders"]] == newest[:2] and first["next"] == newest[1]
    assert all(o["status"] == "confirmed" for o in first["orders"])
    second = (await client.get("/orders", params={"status": "confirmed", "limit": 2,
                                                  "before": first["next"]})).json()
    assert second["orders"][0]["orderId"] == newest[2]
    for params, field, rule in (({"status": "lost"}, "status", "status"),
                                ({"limit": "many"}, "limit", "range")):
        refused = await client.get("/orders", params=params)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["field"], error["rule"]) == (field, rule), error


@pytest.mark.cluster
async def test_health_readiness_and_metrics(client: httpx.AsyncClient) -> None:
    health = await client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {
        "status": "ready", "checks": {"redis": "ok", "postgres": "ok"}}
    metrics = (await client.get("/metrics")).text
    assert "oee_orders_accepted_total" in metrics and "oee_ws_subscribers" in metrics
    assert 'oee_ws_delivery_seconds_bucket{le="+Inf"}' in metrics
    assert 'oee_group_backlog{group="executor"}' in metrics
    schema = (await client.get("/openapi.json")).json()
    assert "/orders/execute" in schema["paths"]
    assert "OrderRequested" in schema["components"]["schemas"]


@pytest.mark.cluster
async def test_failed_attempts_are_kept_and_the_order_ends_failed(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    namespace = f"e2e-fail-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path, OEE_FAILURE_RATE="1") as failing:
        async with httpx.AsyncClient(base_url=failing.url) as client:
            order_id = await submit(client)
        messages, code = await watch(failing, order_id)
        assert [m["status"] for m in messages] == ["pending", "routing", "building", "failed"]
        assert code == 1000 and "3 attempts" in messages[-1]["error"]

        async def persisted() -> tuple[Any, ...] | None:
            async with await psycopg.AsyncConnection.connect(database_url) as conn:
                cursor = await conn.execute(
                    "SELECT o.status, o.failed_attempts, o.error,"
                    " (SELECT array_agg(e.data->>'error' ORDER BY e.seq) FROM events e"
                    "   WHERE e.order_id = o.order_id AND e.type = 'AttemptFailed')"
                    " FROM orders o WHERE o.order_id = %s AND o.status = 'failed'", (order_id,))
                return await cursor.fetchone()

        status, attempts, error, attempt_errors = await eventually(persisted, 20)
        assert (status, attempts) == ("failed", 3) and "3 attempts" in error
        assert len(attempt_errors) == 3 and all(attempt_errors)
        async with httpx.AsyncClient(base_url=failing.url) as client:
            view = (await client.get(f"/orders/{order_id}")).json()
        assert view["failedAttempts"] == 3 and len(view["attempts"]) == 3
    # Stopped, the system leaves none of its keys in Redis.
    redis = connect(redis_url)
    try:
        assert [key async for key in redis.scan_iter(match=f"{namespace}:*")] == []
    finally:
        await redis.aclose()


@pytest.mark.cluster
async def test_quote_shows_the_route_without_executing(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    before = await log_length(store)
    small = await client.get("/quote", params={"tokenIn": "SOL", "tokenOut": "USDC",
                                               "amount": "0.5"})
    assert small.status_code == 200, small.text
    quote = small.json()
    assert quote["route"]["kind"] == "direct" and len(quote["route"]["legs"]) == 1
    assert float(quote["expectedOut"]) > float(quote["minAmountOut"]) > 0
    assert quote["slippage"] == 0.01 and quote["reason"]
    assert quote["candidates"][0] == quote["route"]
    large = (await client.get("/quote", params={"tokenIn": "SOL", "tokenOut": "USDC",
                                                "amount": "40000", "slippage": "0.05"})).json()
    splits = large["route"]["splits"][0]
    assert large["route"]["kind"] == "split" and len(splits) == 2
    assert sum(s["percent"] for s in splits) == 100
    assert large["priceImpact"] > quote["priceImpact"]
    hops = (await client.get("/quote", params={"tokenIn": "BONK", "tokenOut": "RAY",
                                               "amount": "1000000"})).json()
    assert hops["route"]["kind"] == "two_hop" and hops["route"]["path"][1] in ("SOL", "USDC")
    bad = await client.get("/quote", params={"tokenIn": "SOL", "tokenOut": "SOL", "amount": "1"})
    assert bad.status_code == 400 and bad.json()["error"]["rule"] == "distinct_tokens"
    missing = await client.get("/quote", params={"tokenIn": "SOL", "tokenOut": "USDC"})
    assert missing.status_code == 400
    assert (missing.json()["error"]["field"], missing.json()["error"]["rule"]) == (
        "amount", "required")
    assert await log_length(store) == before  # nothing was executed
