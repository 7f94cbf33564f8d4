"""Keys, ownership, idempotency and limits, against the real processes: two gateways on one
Redis and one PostgreSQL, as a deployment behind a load balancer has them."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis.asyncio as aioredis
import websockets

from bench.harness import System, system
from shared.accounts import create_key, parse_key
from shared.config import Settings
from shared.events import OrderRequested
from shared.stream import EventStore
from tests.helpers import HAPPY, ORDER, drain, eventually, watch

pytestmark = pytest.mark.e2e

RATE_PER_MIN = 30
MAX_WS = 3


@pytest.fixture(scope="module")
def namespace() -> str:
    return f"sec-{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("security-logs")


@pytest.fixture(scope="module")
def gateways(redis_url: str, database_url: str, namespace: str,
             logs: Path) -> Iterator[tuple[System, System]]:
    """The whole system with keys required, and a second gateway beside the first."""
    settings = {"OEE_AUTH": "required", "OEE_RATE_LIMIT_PER_MIN": str(RATE_PER_MIN),
                "OEE_MAX_WS_PER_ACCOUNT": str(MAX_WS), "OEE_EXECUTION_LATENCY_MS": "100-200"}
    with system(redis_url, database_url, namespace, logs, **settings) as first:
        from services.cli.embedded import free_port

        second = System({**first.env, "PORT": str(free_port())}, logs / "second")
        second.logs.mkdir()  # type: ignore[union-attr]
        second.start("gateway")
        try:
            second.wait_ready()
            yield first, second
        finally:
            second.stop()


@pytest.fixture(scope="module")
def keys(database_url: str) -> list[str]:
    """Every key the tests make, so the last test can look for them everywhere."""
    return []


@pytest.fixture
def new_key(database_url: str, keys: list[str]) -> Any:
    async def make(operator: bool = False) -> tuple[str, str]:
        name = f"acct-{secrets.token_hex(4)}"
        key = await create_key(database_url, name, operator=operator)
        keys.append(key)
        return name, key
    return make


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def auth(key: str) -> dict[str, str]:
    return {"x-api-key": key}


async def test_requests_without_a_valid_key_get_401(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any
) -> None:
    first, _ = gateways
    _, key = await new_key()
    for headers in ({}, auth("nonsense"), auth(key[:-1] + ("A" if key[-1] != "A" else "B"))):
        for method, path in (("POST", "/orders/execute"), ("GET", "/orders"),
                             ("GET", "/quote?tokenIn=SOL&tokenOut=USDC&amount=1")):
            response = await http.request(method, first.url + path, headers=headers, json=ORDER)
            assert response.status_code == 401, (headers, path)
            assert response.json()["error"]["rule"] == "unauthorized"
            assert response.headers["www-authenticate"] == "ApiKey"
            assert key not in response.text
    for path in ("/healthz", "/readyz", "/openapi.json"):
        assert (await http.get(first.url + path)).status_code == 200


async def test_another_account_never_sees_an_order(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any
) -> None:
    first, second = gateways
    alice, alice_key = await new_key()
    _, bob_key = await new_key()
    _, operator_key = await new_key(operator=True)
    submitted = await http.post(first.url + "/orders/execute", json=ORDER,
                                headers=auth(alice_key))
    assert submitted.status_code == 202
    order_id = submitted.json()["orderId"]
    messages, code = await watch(second, order_id, auth(alice_key))
    assert [m["status"] for m in messages] == HAPPY and code == 1000

    unknown_id = "0190d6d4-0000-7000-8000-000000000000"
    for gateway in (first, second):
        for path in ("/orders/{}", "/orders/{}/events",
                     "/orders/{}?asOf=2030-01-01T00:00:00Z"):
            theirs = await http.get(gateway.url + path.format(order_id), headers=auth(bob_key))
            nobody = await http.get(gateway.url + path.format(unknown_id), headers=auth(bob_key))
            assert theirs.status_code == nobody.status_code == 404
            assert theirs.json()["error"] | {"message": ""} == nobody.json()["error"] | {
                "message": ""}
        url = f"{gateway.ws_url}/orders/execute?orderId={order_id}"
        async with websockets.connect(url, additional_headers=auth(bob_key)) as ws:
            refused = await drain(ws)
        assert ws.close_code == 1008
        assert [m["error"]["rule"] for m in refused] == ["unknown_order"]
        listed = await http.get(gateway.url + "/orders", headers=auth(bob_key))
        assert order_id not in listed.text

    async def listed_for(key: str, query: str = "") -> list[str] | None:
        page = await http.get(first.url + "/orders" + query, headers=auth(key))
        ids = [o["orderId"] for o in page.json()["orders"]]
        return ids if order_id in ids else None

    # The projection catches up with the log a moment later.
    assert await eventually(lambda: listed_for(alice_key), 10) == [order_id]
    assert order_id in await eventually(lambda: listed_for(operator_key), 10)
    assert await listed_for(operator_key, f"?account={alice}") == [order_id]
    refused = await http.get(first.url + f"/orders?account={alice}", headers=auth(bob_key))
    assert refused.status_code == 400
    own = await http.get(first.url + f"/orders/{order_id}", headers=auth(operator_key))
    assert own.status_code == 200 and own.json()["status"] == "confirmed"


async def test_a_browser_authenticates_with_a_first_message(
    gateways: tuple[System, System], new_key: Any
) -> None:
    first, _ = gateways
    _, key = await new_key()
    async with websockets.connect(f"{first.ws_url}/orders/execute") as ws:
        await ws.send(json.dumps({"type": "auth", "apiKey": key}))
        await ws.send(json.dumps(ORDER))
        messages = await drain(ws)
    assert [m["status"] for m in messages] == HAPPY and ws.close_code == 1000
    for first_message in (json.dumps(ORDER), json.dumps({"type": "auth", "apiKey": "nope"})):
        async with websockets.connect(f"{first.ws_url}/orders/execute") as ws:
            await ws.send(first_message)
            refused = await drain(ws)
        assert ws.close_code == 1008
        assert [m["error"]["rule"] for m in refused] == ["unauthorized"]


async def test_open_websockets_are_capped_per_account(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any
) -> None:
    first, _ = gateways
    _, key = await new_key()
    url = f"{first.ws_url}/orders/execute"
    # Streams of the account's orders: they stay open, and a first status on each proves
    # the gateway has counted it (a connection counts once its key is checked).
    held = [await websockets.connect(f"{first.ws_url}/orders/stream",
                                     additional_headers=auth(key)) for _ in range(MAX_WS)]
    try:
        submitted = await http.post(first.url + "/orders/execute", json=ORDER, headers=auth(key))
        assert submitted.status_code == 202
        for ws in held:
            [status] = await read_statuses(ws, 1)
            assert status["orderId"] == submitted.json()["orderId"]
        async with websockets.connect(url, additional_headers=auth(key)) as extra:
            refused = await drain(extra)
        assert extra.close_code == 1008
        assert [m["error"]["rule"] for m in refused] == ["too_many_connections"]
    finally:
        for ws in held:
            await ws.close()
    # Once they are closed, the account may connect again.

    # The gateway lets a slot go only when its handler has finished, a moment after the
    # close handshake; until then it may still refuse, even before the order is sent.
    async def connects() -> bool | None:
        async with websockets.connect(url, additional_headers=auth(key)) as ws:
            try:
                await ws.send(json.dumps(ORDER))
            except websockets.ConnectionClosed:
                return None
            statuses = [m.get("status") for m in await drain(ws)]
        return True if statuses == HAPPY else None

    assert await eventually(connects, 10)


async def test_a_revoked_key_is_refused_by_every_gateway_within_5_s(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any,
    database_url: str,
) -> None:
    name, key = await new_key()
    for gateway in gateways:
        assert (await http.get(gateway.url + "/orders", headers=auth(key))).status_code == 200
    started = time.monotonic()
    revoking = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "keys", "revoke", name,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await revoking.communicate()
    assert revoking.returncode == 0 and key not in output.decode()

    async def refused_everywhere() -> bool | None:
        codes = [(await http.get(g.url + "/orders", headers=auth(key))).status_code
                 for g in gateways]
        return True if codes == [401, 401] else None

    await eventually(refused_everywhere, 10, every_s=0.1)
    assert time.monotonic() - started < 5


async def test_the_rate_limit_holds_across_two_gateways(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any
) -> None:
    _, key = await new_key()
    started = time.monotonic()

    async def burst(gateway: System) -> list[httpx.Response]:
        return list(await asyncio.gather(*(
            http.post(gateway.url + "/orders/execute", json=ORDER, headers=auth(key))
            for _ in range(60))))

    answers = [r for rs in await asyncio.gather(*map(burst, gateways)) for r in rs]
    elapsed = time.monotonic() - started
    accepted = [r for r in answers if r.status_code == 202]
    limited = [r for r in answers if r.status_code == 429]
    assert len(accepted) + len(limited) == len(answers)
    # The whole burst allowance, plus what the steady rate adds while the burst runs.
    assert RATE_PER_MIN <= len(accepted) <= RATE_PER_MIN + 1 + elapsed * RATE_PER_MIN / 60
    for response in limited:
        assert response.json()["error"]["rule"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["ratelimit-policy"] == f'"submits";q={RATE_PER_MIN};w=60'
        assert response.headers["ratelimit"].startswith('"submits";r=0;t=')
    assert all("ratelimit" in r.headers for r in accepted)


async def test_one_idempotency_key_across_two_gateways_makes_one_order(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any,
    redis_url: str, namespace: str,
) -> None:
    name, key = await new_key()
    headers = {**auth(key), "Idempotency-Key": secrets.token_hex(8)}
    answers = await asyncio.gather(*(
        http.post(gateways[i % 2].url + "/orders/execute", json=ORDER, headers=headers)
        for i in range(50)))
    accepted = [r for r in answers if r.status_code == 202]
    assert accepted and all(r.status_code in (202, 409) for r in answers)
    assert len({r.json()["orderId"] for r in accepted}) == 1
    order_id = accepted[0].json()["orderId"]
    for response in answers:
        if response.status_code == 409:
            assert response.json()["error"]["rule"] == "in_flight"

    # A retry after the answer replays it, byte for byte, on either gateway.
    for gateway in gateways:
        again = await http.post(gateway.url + "/orders/execute", json=ORDER, headers=headers)
        assert again.status_code == 202 and again.content == accepted[0].content
        assert again.headers["idempotent-replayed"] == "true"
    changed = await http.post(gateways[0].url + "/orders/execute",
                              json={**ORDER, "amount": 0.6}, headers=headers)
    assert changed.status_code == 422
    assert changed.json()["error"]["rule"] == "idempotency_mismatch"

    # Over WebSocket, the same key names the same order.
    async with websockets.connect(f"{gateways[1].ws_url}/orders/execute",
                                  additional_headers=auth(key)) as ws:
        await ws.send(json.dumps({**ORDER, "idempotencyKey": headers["Idempotency-Key"]}))
        messages = await drain(ws)
    assert {m["orderId"] for m in messages} == {order_id}

    store = EventStore(Settings(redis_url=redis_url, namespace=namespace))
    try:
        requested = [e async for e in store.everything_after()
                     if isinstance(e.event, OrderRequested) and e.event.account == name]
    finally:
        await store.close()
    assert len(requested) == 1


async def read_statuses(ws: websockets.ClientConnection, count: int,
                        timeout_s: float = 20) -> list[dict[str, Any]]:
    """The next ``count`` messages of a stream that never ends by itself."""
    async with asyncio.timeout(timeout_s):
        return [json.loads(await ws.recv()) for _ in range(count)]


async def test_the_account_stream_resumes_without_gaps_on_another_gateway(
    gateways: tuple[System, System], http: httpx.AsyncClient, new_key: Any
) -> None:
    first, second = gateways
    _, alice_key = await new_key()
    _, bob_key = await new_key()
    _, operator_key = await new_key(operator=True)
    stream = "/orders/stream"
    alice_ws = await websockets.connect(first.ws_url + stream, additional_headers=auth(alice_key))
    operator_ws = await websockets.connect(second.ws_url + stream,
                                           additional_headers=auth(operator_key))

    async def submit(key: str) -> str:
        response = await http.post(first.url + "/orders/execute", json=ORDER, headers=auth(key))
        assert response.status_code == 202
        order_id: str = response.json()["orderId"]
        return order_id

    # A stream starts when the gateway has checked its key: once both have seen a probe
    # order end, everything after it reaches them.
    probe = await submit(alice_key)
    for ws in (alice_ws, operator_ws):
        async with asyncio.timeout(20):
            while (m := json.loads(await ws.recv()))["orderId"] != probe or (
                    m["status"] != "confirmed"):
                pass

    theirs = await submit(bob_key)
    mine = [await submit(alice_key) for _ in range(2)]
    seen = await read_statuses(alice_ws, 2 * len(HAPPY))
    await alice_ws.close()
    by_order = {o: [m["status"] for m in seen if m["orderId"] == o] for o in mine}
    assert by_order == {o: HAPPY for o in mine}
    assert theirs not in {m["orderId"] for m in seen}
    positions = [m["position"] for m in seen]
    assert len(set(positions)) == len(positions)
    # The operator's stream is every account's: theirs and mine, each whole and in order.
    # Orders other tests submitted before the probe may still be finishing: only they may
    # come besides (UUIDv7 ids sort by creation).
    wanted = {theirs, *mine}
    everyone: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while sum(m["orderId"] in wanted for m in everyone) < len(wanted) * len(HAPPY):
            everyone.append(json.loads(await operator_ws.recv()))
    await operator_ws.close()
    assert {o: [m["status"] for m in everyone if m["orderId"] == o] for o in wanted} == {
        o: HAPPY for o in wanted}
    assert all(m["orderId"] < probe for m in everyone if m["orderId"] not in wanted)

    # Gone after the first three statuses; more orders finish meanwhile; back on the other
    # gateway with the last position seen: the rest, once, in order.
    later = [await submit(alice_key) for _ in range(2)]
    resume = f"{second.ws_url}{stream}?after={positions[2]}"
    async with websockets.connect(resume, additional_headers=auth(alice_key)) as ws:
        rest = await read_statuses(ws, len(seen) - 3 + 2 * len(HAPPY))
    # What was missed comes once, partition by partition (so in another interleaving of
    # orders), each order's statuses in order.
    assert len(rest) == len(seen) - 3 + 2 * len(HAPPY)
    missed = [m for m in rest if m["orderId"] in mine]
    assert sorted((m["orderId"], m["status"]) for m in missed) == sorted(
        (m["orderId"], m["status"]) for m in seen[3:])
    for order_id in mine:
        sent = [m["status"] for m in seen[3:] if m["orderId"] == order_id]
        assert [m["status"] for m in missed if m["orderId"] == order_id] == sent
    for order_id in later:
        assert [m["status"] for m in rest if m["orderId"] == order_id] == HAPPY
    assert theirs not in {m["orderId"] for m in rest}

    async with websockets.connect(f"{first.ws_url}{stream}?after=yesterday",
                                  additional_headers=auth(alice_key)) as ws:
        refused = await drain(ws)
    assert ws.close_code == 1008 and refused[0]["error"]["rule"] == "position"


async def test_unfinished_orders_are_capped_per_account(
    redis_url: str, database_url: str, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    namespace = f"sec-open-{secrets.token_hex(4)}"
    with system(redis_url, database_url, namespace, tmp_path, OEE_MAX_OPEN_ORDERS="2",
                OEE_EXECUTION_LATENCY_MS="1500-1700") as running:
        url = running.url + "/orders/execute"
        first = [await http.post(url, json=ORDER) for _ in range(2)]
        assert [r.status_code for r in first] == [202, 202], [r.text for r in first]
        refused = await http.post(url, json=ORDER)
        # Said in full if it fails: this test failed once, in a whole run, unexplained.
        assert refused.status_code == 429, (refused.status_code, refused.text)
        assert refused.json()["error"]["rule"] == "open_orders"
        assert int(refused.headers["retry-after"]) >= 1

        async def accepted_again() -> str | None:
            again = await http.post(url, json=ORDER)
            return again.json()["orderId"] if again.status_code == 202 else None

        # Once the first two end, there is room again.
        await eventually(accepted_again, 20, every_s=0.2)


async def test_keys_are_never_written_anywhere(
    gateways: tuple[System, System], keys: list[str], logs: Path, database_url: str,
    redis_url: str, namespace: str,
) -> None:
    """Runs last in this module: every key the tests made, looked for in every log, every
    event in Redis and every row in PostgreSQL."""
    assert keys
    secrets_used = keys + [parse_key(k).secret for k in keys]  # type: ignore[union-attr]
    text = await asyncio.to_thread(
        lambda: "\n".join(p.read_text(errors="replace") for p in logs.rglob("*.log")))
    redis = aioredis.Redis.from_url(redis_url)
    try:
        async for name in redis.scan_iter(match=f"{namespace}:*", count=1000):
            kind = await redis.type(name)
            if kind == b"stream":
                text += str(await redis.xrange(name))
            elif kind == b"hash":
                text += str(await redis.hgetall(name))
            text += str(name)
    finally:
        await redis.aclose()
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for table in ("events", "orders", "api_keys"):
            cursor = await conn.execute(f"SELECT t::text FROM {table} t")  # type: ignore[arg-type]
            text += "\n".join(str(row[0]) for row in await cursor.fetchall())
    assert "OrderRequested" in text
    for secret in secrets_used:
        assert secret not in text
