"""``oee submit``: one order from a terminal, over the WebSocket that submits and streams.

Each status is printed as it arrives; the exit status says how the order ended: 0 when it
is confirmed, 1 when it failed or the gateway refused it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import msgspec
import websockets

from shared import lifecycle
from shared.config import Settings

# Ample for a handshake; the order itself may take as long as it takes.
OPEN_TIMEOUT_S = 10.0


class Order(msgspec.Struct, omit_defaults=True, rename="camel"):
    token_in: str
    token_out: str
    # As typed, a decimal string: no float rounding on the way.
    amount: str
    slippage: float
    type: str | None = None
    idempotency_key: str | None = None


class Status(msgspec.Struct, rename="camel"):
    """A status message; only what is printed is read, the rest ignored."""

    order_id: str
    status: str
    routed_dex: str | None = None
    tx_hash: str | None = None
    executed_price: float | None = None
    amount_in: str | None = None
    amount_out: str | None = None
    error: str | None = None


class Problem(msgspec.Struct):
    field: str = ""
    rule: str = ""
    message: str = ""


class Refusal(msgspec.Struct):
    error: Problem


def api_key(settings: Settings, given: str | None) -> str | None:
    """--key, else $OEE_API_KEY, else the operator key `oee up` wrote; None: send none (the
    gateway may run with OEE_AUTH=off)."""
    from services.cli.up import KEY_FILE

    if given:
        return given
    if key := os.environ.get("OEE_API_KEY"):
        return key
    path = Path(settings.data_dir) / KEY_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def ws_url(http_url: str) -> str:
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}/orders/execute"


def line(status: Status, first: bool) -> str:
    """One status for a person: `routing   raydium`, `confirmed raydium tx … 0.5 -> 75.9`;
    the order id on the first line only."""
    parts = [f"{status.status:<10}"]
    if first:
        parts.append(f"order {status.order_id}")
    if status.routed_dex:
        parts.append(status.routed_dex)
    if status.tx_hash:
        parts.append(f"tx {status.tx_hash}")
    if status.amount_in and status.amount_out:
        parts.append(f"{status.amount_in} -> {status.amount_out}")
    if status.executed_price is not None:
        parts.append(f"at {status.executed_price}")
    if status.error:
        parts.append(f"error: {status.error}")
    return "  ".join(parts)


async def follow(url: str, key: str | None, order: Order, as_json: bool) -> int:
    headers = {"x-api-key": key} if key else {}
    ended: str | None = None
    seen = 0
    async with websockets.connect(url, additional_headers=headers,
                                  open_timeout=OPEN_TIMEOUT_S) as ws:
        await ws.send(msgspec.json.encode(order).decode())
        async for raw in ws:
            message: Any = msgspec.json.decode(raw)
            if as_json:
                print(raw if isinstance(raw, str) else raw.decode(), flush=True)
            # A failed order's status carries an `error` too; a refusal has no status.
            if isinstance(message, dict) and "status" not in message:
                problem = msgspec.convert(message, Refusal).error
                if not as_json:
                    print(f"refused: {problem.field}: {problem.rule}: {problem.message}",
                          file=sys.stderr, flush=True)
                return 1
            status = msgspec.convert(message, Status)
            if not as_json:
                print(line(status, first=not seen), flush=True)
            seen += 1
            if status.status in lifecycle.TERMINAL:
                ended = status.status
    if ended is None:
        print("oee: the gateway closed the stream before the order ended", file=sys.stderr)
        return 1
    return 0 if ended == "confirmed" else 1


def run(settings: Settings, order: Order, url: str | None, key: str | None,
        as_json: bool) -> int:
    target = ws_url(url or f"http://127.0.0.1:{settings.port}")
    try:
        return asyncio.run(follow(target, api_key(settings, key), order, as_json))
    except (OSError, websockets.InvalidHandshake, TimeoutError) as problem:
        print(f"oee: cannot submit to {target}: {problem}", file=sys.stderr)
        return 1
    except msgspec.ValidationError as problem:
        print(f"oee: the gateway sent a message this client does not know: {problem}",
              file=sys.stderr)
        return 1
    except websockets.ConnectionClosedError as closed:
        print(f"oee: the gateway closed the connection: {closed}", file=sys.stderr)
        return 1
