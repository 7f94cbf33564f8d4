"""No 5xx for anything a client can send, against the real processes: a NUL byte (and raw
bytes that are not UTF-8) in each kind of parameter is a 4xx naming the field and the rule;
and 503 is kept for a dependency that is really down."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from bench.harness import System, system
from services.cli.embedded import free_port
from shared.accounts import create_key
from tests.helpers import ORDER, Outage, drain, eventually

pytestmark = pytest.mark.e2e

ORDER_ID = "01a21435-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    with system(redis_url, database_url, f"bad-{secrets.token_hex(4)}", logs,
                OEE_AUTH="required") as started:
        yield started


@pytest.fixture(scope="module")
async def operator(database_url: str) -> str:
    return await create_key(database_url, f"bad-{secrets.token_hex(4)}", operator=True)


@pytest.fixture
async def client(running: System, operator: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=10,
                                 headers={"x-api-key": operator}) as client:
        yield client


def assert_refused(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["rule"] and error["message"], error


async def test_a_nul_byte_in_each_kind_of_parameter_is_a_4xx(
    client: httpx.AsyncClient
) -> None:
    # Query: PostgreSQL refuses a NUL byte in text, which was once answered 503.
    assert_refused(await client.get("/orders?account=%00x"), 400, "account")
    assert_refused(await client.get("/orders?before=%00"), 400, "before")
    assert_refused(await client.get(f"/orders/{ORDER_ID}?asOf=%00"), 400, "asOf")
    assert_refused(await client.get("/quote?tokenIn=%00&tokenOut=USDC&amount=1"), 400,
                   "tokenIn")
    # Path: no order has such an id.
    for method in ("GET", "DELETE"):
        assert_refused(await client.request(method, "/orders/%00x"), 404, "orderId")
    assert_refused(await client.get("/orders/%00x/events"), 404, "orderId")
    # Headers: see the raw requests below (HTTP clients refuse to send a NUL byte).
    # Body.
    refused = await client.post("/orders/execute", json={**ORDER, "tokenIn": "SOL\x00"})
    assert_refused(refused, 400, "tokenIn")
    refused = await client.post("/admin/pools", json={
        "mint": "\x00", "symbol": "N", "decimals": 6, "venue": "raydium", "price": "1",
        "liquidity": "1"})
    assert_refused(refused, 400, "mint")


async def test_a_nul_byte_over_websocket_closes_1008(running: System, operator: str) -> None:
    headers = {"x-api-key": operator}
    for path, message, rule in (
        ("/orders/execute?orderId=%00", None, "unknown_order"),
        ("/orders/stream?after=%00", None, "position"),
        ("/orders/execute", '{"tokenIn": "SOL\\u0000", "tokenOut": "USDC", "amount": 1, '
         '"slippage": 0.01}', "unknown_token"),
    ):
        async with websockets.connect(running.ws_url + path, additional_headers=headers) as ws:
            if message is not None:
                await ws.send(message)
            received = await drain(ws)
        assert [m["error"]["rule"] for m in received] == [rule]
        assert ws.close_code == 1008 and ws.close_reason.endswith(rule)


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request written byte for byte (an HTTP client would refuse to send these)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("head", [
    b"POST /orders/execute HTTP/1.1\r\nIdempotency-Key: a\x00b",
    b"POST /orders/execute HTTP/1.1\r\nIdempotency-Key: \xc3\x28",
    b"GET /orders?account=\xc3\x28 HTTP/1.1",
    b"GET /orders/\xff\xfe HTTP/1.1",
    b"GET /orders?status=\x00 HTTP/1.1",
    b"GET /orders HTTP/1.1\r\nx-api-key: k\x00",
    b"GET /orders HTTP/1.1\r\nx-api-key: \xc3\x28",
])
async def test_nul_and_bytes_that_are_not_utf8_are_a_4xx_in_path_query_and_headers(
    running: System, operator: str, head: bytes
) -> None:
    if b"x-api-key" not in head:
        head = head.replace(b" HTTP/1.1", b" HTTP/1.1\r\nx-api-key: " + operator.encode(), 1)
    body = b'{"tokenIn": "SOL", "tokenOut": "USDC", "amount": 0.5, "slippage": 0.01}'
    answer = await asyncio.to_thread(raw_request, running.port, head,
                                     body if head.startswith(b"POST") else b"")
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]


async def test_postgres_down_is_503_and_nothing_else(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    # PostgreSQL answers while the gateway starts (a service that cannot reach it at start
    # refuses to start), then goes away behind the relay.
    async with Outage(database_url) as outage:
        env = {"REDIS_URL": redis_url, "PORT": str(free_port()), "OEE_AUTH": "off",
               "OEE_NAMESPACE": f"nopg-{secrets.token_hex(4)}", "DATABASE_URL": outage.url}
        gateway = System({**os.environ, **env}, tmp_path)
        gateway.start("gateway")
        try:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                async def ready() -> bool | None:
                    try:
                        return (await client.get("/readyz")).status_code == 200 or None
                    except httpx.TransportError:
                        return None

                await eventually(ready, 30)
                await outage.cut()
                answer = await client.get("/readyz")
                assert answer.status_code == 503
                assert answer.json()["checks"]["postgres"].startswith("unavailable")
                for path in ("/orders", f"/orders/{ORDER_ID}", f"/orders/{ORDER_ID}/events"):
                    response = await client.get(path)
                    assert_refused(response, 503, "service")
                    assert response.json()["error"]["rule"] == "unavailable"
                    assert response.headers["retry-after"] == "1"
                # Input is still checked first: a bad request is 400 even now.
                assert_refused(await client.get("/orders?limit=0"), 400, "limit")
        finally:
            gateway.stop()
    logged = _logs(tmp_path)
    assert logged and "unexpected error" not in logged


def _logs(folder: Path) -> str:
    """What the processes logged into ``folder``."""
    return "".join(path.read_text() for path in folder.glob("*.log"))
