"""Hostile WebSocket clients against one gateway, while an honest subscriber follows an order
on it: each hostile client gets its error and a policy close, and the honest one still gets
every status of its order exactly once, in order.

Then every kind of message a client sends (the auth message, the order, anything after it)
is fuzzed with random bytes, deep JSON, huge numbers and NUL bytes in strings: each is
answered with the error message and a 1008 close (text after the order is ignored), never
with 1011 or silence, and the gateway serves a good client afterwards.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from bench.harness import System, system
from shared.accounts import create_key
from tests.helpers import drain

pytestmark = pytest.mark.e2e

ORDER = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01}
HAPPY = ["pending", "routing", "building", "submitted", "confirmed"]
POLICY = 1008
MEGABYTE = 1024 * 1024
FLOOD_PER_S = 1000
# The gateway's limit is 20 a second with bursts of 40: a flood is cut long before this.
FLOOD_MAX = 3000

Hostile = Callable[[websockets.ClientConnection], Awaitable[None]]


@pytest.fixture(scope="module")
def running(redis_url: str, database_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    logs = tmp_path_factory.mktemp("logs")
    # Execution slow enough that every hostile client is done (in well under a second)
    # while the order is still in flight.
    with system(redis_url, database_url, f"wsfuzz-{secrets.token_hex(4)}", logs,
                OEE_AUTH="required", OEE_EXECUTION_LATENCY_MS="3000") as started:
        yield started


@pytest.fixture(scope="module")
async def key(database_url: str) -> str:
    return await create_key(database_url, f"wsfuzz-{secrets.token_hex(4)}")


@pytest.fixture
async def order_id(running: System, key: str) -> AsyncIterator[str]:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        response = await client.post("/orders/execute", json=ORDER, headers={"x-api-key": key})
    assert response.status_code == 202, response.text
    yield response.json()["orderId"]


# --- what the hostile clients send ---------------------------------------------------


def sends(message: str | bytes) -> Hostile:
    async def send(ws: websockets.ClientConnection) -> None:
        await ws.send(message)
    return send


async def flood(ws: websockets.ClientConnection) -> None:
    """A valid order, then text messages at FLOOD_PER_S until the server closes the
    connection: the flood is refused even from a client whose order was accepted."""
    start = time.monotonic()
    for sent in range(FLOOD_MAX):
        try:
            await ws.send(json.dumps(ORDER) if sent == 0 else '{"ping":1}')
        except websockets.ConnectionClosed:
            return
        # Paces the flood (this is its rate, not a wait for the server).
        ahead = start + (sent + 1) / FLOOD_PER_S - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


WRONG_TYPES = json.dumps({**ORDER, "tokenIn": 42})
HOSTILE: dict[str, tuple[Hostile, str]] = {
    "invalid_json": (sends('{"tokenIn": "SOL", "amount": '), "json"),
    "wrong_types": (sends(WRONG_TYPES), "type"),
    "not_an_object": (sends("[1, 2, 3]"), "object"),
    "binary_frame": (sends(json.dumps(ORDER).encode()), "binary"),
    "megabyte_frame": (sends(json.dumps({**ORDER, "pad": "x" * MEGABYTE})), "size"),
    "flood": (flood, "flood"),
}
# While an order is streamed, only these break the rules; other text is ignored.
WHILE_STREAMING = ("binary_frame", "megabyte_frame", "flood")


async def refused(url: str, key: str | None, attack: Hostile) -> tuple[list[Any], int | None]:
    """Every message the server sent a hostile client, and its close code."""
    headers = {"x-api-key": key} if key else {}
    received: list[Any] = []
    async with asyncio.timeout(20), websockets.connect(
        url, additional_headers=headers, max_size=None
    ) as ws:
        sending = asyncio.create_task(attack(ws))
        try:
            received += await drain(ws)
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
        return received, ws.close_code


def assert_refused(received: list[Any], code: int | None, rule: str) -> None:
    assert code == POLICY, (code, received)
    assert received, "no error before the close"
    error = received[-1]["error"]
    assert error["rule"] == rule, received[-1]
    assert set(error) == {"field", "rule", "message"}
    # Nothing before the error but the statuses of a followed order.
    assert all("status" in m for m in received[:-1]), received


async def follow(running: System, key: str, order_id: str,
                 first: asyncio.Event) -> tuple[list[dict[str, Any]], int | None]:
    url = f"{running.ws_url}/orders/execute?orderId={order_id}"
    messages: list[dict[str, Any]] = []
    async with asyncio.timeout(30), websockets.connect(
        url, additional_headers={"x-api-key": key}
    ) as ws:
        try:
            async for message in ws:
                messages.append(json.loads(message))
                first.set()
        except websockets.ConnectionClosed:
            pass  # the close code says how
        return messages, ws.close_code


# --- the tests -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_submitter_gets_its_error_and_a_policy_close(
    running: System, key: str, name: str
) -> None:
    attack, rule = HOSTILE[name]
    received, code = await refused(f"{running.ws_url}/orders/execute", key, attack)
    assert_refused(received, code, rule)
    if name != "flood":
        assert len(received) == 1, received


async def test_hostile_clients_leave_an_honest_subscriber_whole(
    running: System, key: str, order_id: str
) -> None:
    attached = asyncio.Event()
    honest = asyncio.create_task(follow(running, key, order_id, attached))
    await attached.wait()  # the honest subscriber has its first status: it is registered

    submit_url = f"{running.ws_url}/orders/execute"
    stream_url = f"{submit_url}?orderId={order_id}"
    attacks = [(submit_url, key, attack, rule) for attack, rule in HOSTILE.values()]
    attacks += [(stream_url, key, *HOSTILE[name]) for name in WHILE_STREAMING]
    attacks += [
        (submit_url, None, sends(json.dumps(ORDER)), "unauthorized"),
        (submit_url, f"oee_{secrets.token_hex(6)}_nope", sends(json.dumps(ORDER)),
         "unauthorized"),
    ]
    outcomes = await asyncio.gather(*(refused(url, k, attack) for url, k, attack, _ in attacks))
    for (url, _, _, rule), (received, code) in zip(attacks, outcomes, strict=True):
        try:
            assert_refused(received, code, rule)
        except AssertionError as failure:
            raise AssertionError(f"{url} expecting {rule}: {failure}") from None

    messages, code = await honest
    assert [m["status"] for m in messages] == HAPPY
    assert [m["seq"] for m in messages] == sorted({m["seq"] for m in messages})
    assert {m["orderId"] for m in messages} == {order_id}
    assert code == 1000


# --- every kind of message, fuzzed: the auth message, the order, what follows it -----------

_random = random.Random(20261206)  # seeded: the same bytes every run
RANDOM_BYTES = _random.randbytes(600)
DEEP = 7000  # nesting levels, inside the 16 KiB a message may have
# Payloads as text (str) or as a binary frame (bytes).
FUZZ: dict[str, str | bytes] = {
    "random_bytes": RANDOM_BYTES,
    "random_text": RANDOM_BYTES.decode("latin-1"),
    "deep_json": "[" * DEEP + "]" * DEEP,
    "deep_json_in_a_field": '{"tokenIn": ' + "[" * DEEP + "]" * DEEP + "}",
    "huge_number": json.dumps({**ORDER, "amount": "@"}).replace('"@"', "9" * 10_000),
    "huge_exponent": json.dumps({**ORDER, "amount": "@"}).replace('"@"', "1e999999"),
    "nul_in_strings": json.dumps({**ORDER, "tokenIn": "SOL\x00", "tokenOut": "\x00"}),
    "nul_in_the_key": json.dumps({"type": "auth", "apiKey": "oee_\x00"}),
}
# The rule each payload breaks when it comes as the order (the key came in the header).
AS_THE_ORDER = {
    "random_bytes": "binary", "random_text": "json", "deep_json": "object",
    "deep_json_in_a_field": "type", "huge_number": "max", "huge_exponent": "max",
    "nul_in_strings": "unknown_token", "nul_in_the_key": "unknown_field",
}


async def fuzzed(url: str, key: str | None, payload: str | bytes,
                 then_order: bool = False) -> tuple[list[Any], int | None]:
    """Every message the server sends a client that sends ``payload`` (after an order of
    its own, with ``then_order``), and its close code; within a deadline, never a hang."""
    headers = {"x-api-key": key} if key else {}
    async with asyncio.timeout(30), websockets.connect(
        url, additional_headers=headers, max_size=None
    ) as ws:
        if then_order:
            await ws.send(json.dumps(ORDER))
            first = json.loads(await ws.recv())
            assert first["status"] == "pending", first
        await ws.send(payload)
        received = await drain(ws)
        return ([first] if then_order else []) + received, ws.close_code


@pytest.mark.parametrize("name", list(FUZZ))
async def test_a_fuzzed_auth_message_is_refused_with_1008(
    running: System, name: str
) -> None:
    received, code = await fuzzed(f"{running.ws_url}/orders/execute", None, FUZZ[name])
    binary = isinstance(FUZZ[name], bytes)
    assert_refused(received, code, "binary" if binary else "unauthorized")
    assert len(received) == 1


@pytest.mark.parametrize("name", list(FUZZ))
async def test_a_fuzzed_order_message_is_refused_with_1008(
    running: System, key: str, name: str
) -> None:
    received, code = await fuzzed(f"{running.ws_url}/orders/execute", key, FUZZ[name])
    assert_refused(received, code, AS_THE_ORDER[name])
    assert len(received) == 1


async def test_fuzz_after_the_order_is_refused_or_ignored_never_a_fault(
    running: System, key: str
) -> None:
    """While an order is streamed, a binary frame is refused (1008); any text is ignored,
    and the order's statuses all still come, then a normal close."""
    url = f"{running.ws_url}/orders/execute"
    outcomes = await asyncio.gather(*(fuzzed(url, key, payload, then_order=True)
                                      for payload in FUZZ.values()))
    for name, (received, code) in zip(FUZZ, outcomes, strict=True):
        if isinstance(FUZZ[name], bytes):
            assert_refused(received, code, "binary")
        else:
            assert [m["status"] for m in received] == HAPPY, (name, received)
            assert code == 1000, (name, code)


async def test_after_the_fuzz_the_gateway_serves_a_good_client_and_logged_no_fault(
    running: System, key: str
) -> None:
    async with asyncio.timeout(30), websockets.connect(
        f"{running.ws_url}/orders/execute", additional_headers={"x-api-key": key}
    ) as ws:
        await ws.send(json.dumps(ORDER))
        received = await drain(ws)
    assert [m["status"] for m in received] == HAPPY
    assert ws.close_code == 1000
    assert running.logs is not None
    logged = "".join(p.read_text() for p in running.logs.glob("gateway-*.log"))
    assert logged and "unexpected error" not in logged
