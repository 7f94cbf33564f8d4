"""OEE_LOG_FORMAT=json: every line every process writes is one JSON object that says which
service and consumer wrote it and, while an order is handled, which order and event."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from bench.harness import SERVICES, system
from tests.conftest import cleanup

pytestmark = pytest.mark.e2e

FIELDS = {"time", "level", "service", "consumer", "message"}


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    namespace = f"e2e-{secrets.token_hex(4)}"
    yield namespace
    client = aioredis.from_url(redis_url)
    await cleanup(client, namespace)
    await client.aclose()


async def test_every_line_of_every_process_is_json_with_its_context(
    redis_url: str, database_url: str, namespace: str, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    with system(redis_url, database_url, namespace, logs, OEE_LOG_FORMAT="json") as running:
        async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
            body = {"tokenIn": "SOL", "tokenOut": "USDC", "amount": "0.5", "slippage": 0.01}
            response = await client.post("/orders/execute", json=body)
            assert response.status_code == 202, response.text
            order_id = response.json()["orderId"]
        url = f"{running.ws_url}/orders/execute?orderId={order_id}"
        async with websockets.connect(url) as ws:
            statuses = [json.loads(message)["status"] async for message in ws]
        assert statuses[-1] == "confirmed"
    # Stopped: the shutdown lines are in the files too.

    lines: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(logs.glob("*.log")):
        service = path.stem.rsplit("-", 1)[0]
        text = path.read_text()
        assert text.endswith("\n"), f"{path.name}: the last line is unfinished"
        for number, line in enumerate(text.splitlines(), 1):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"{path.name}:{number} is not JSON: {line!r}")
            assert isinstance(record, dict), line
            assert record.keys() >= FIELDS, f"{path.name}:{number}: {line}"
            assert record["service"] == service, line
            assert record["consumer"].startswith(f"{service}-"), line
            lines.setdefault(service, []).append(record)

    assert sorted(lines) == sorted(SERVICES)
    about_the_order = [r for rs in lines.values() for r in rs if r.get("orderId") == order_id]
    assert about_the_order, "no line carries the order's id"
    # The router logs its decision while it handles the order's event.
    routed = [r for r in about_the_order if r["service"] == "router"]
    assert routed and all(r.get("eventId") for r in routed), routed
    assert any(order_id in r["message"] for r in routed)
