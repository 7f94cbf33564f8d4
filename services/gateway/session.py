"""The WebSocket protocol: authenticate, hold one of the account's connections, then submit
and stream one order (``/orders/execute``) or stream every order the account may see
(``/orders/stream``).

A refusal raises ``Invalid`` or ``Refusal``; the exception handlers (``errors``) send the
error and close with 1008 (1011 for a dependency down), as they answer HTTP requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from services.gateway.auth import HEADER, key_in_message, unauthorized
from services.gateway.errors import UNAVAILABLE, answer, close
from services.gateway.feed import Follower, follow_all
from services.gateway.guard import MessageGuard
from services.gateway.parts import Parts, parts_of
from services.gateway.queries import is_order_id
from services.gateway.submit import new_order_id, submit
from services.gateway.subscriptions import UnknownOrder, follow
from services.gateway.validation import Invalid, shown, submit_message
from services.gateway.views import Statuses, StatusMessage
from shared.accounts import Account
from shared.metrics import STATUSES_SENT, WS_DELIVERY, WS_SUBSCRIBERS
from shared.positions import Positions

FIRST_MESSAGE_TIMEOUT_S = 30.0
# A browser's auth message comes as soon as its socket opens.
AUTH_TIMEOUT_S = 10.0
# Redis stream ids (and the projection's columns) hold them; a position beyond is made up.
_MAX_ID_PART = 2**63
_encoder = msgspec.json.Encoder()

# The protocol as the OpenAPI document tells it, in the description of POST /orders/execute.
PROTOCOL = """\
**WebSocket** on the same path (browsers can only upgrade a GET). The whole protocol, with
examples: docs/websocket.md.

1. Authenticate: the handshake header `x-api-key`, or (browsers, which cannot set it) a
   first text message `AuthMessage` `{"type":"auth","apiKey":"..."}`.
2. Then either
   - `?orderId=ID` in the URL: the server streams that order's `StatusMessage`s, or
   - send one text message, a `SubmitMessage` (this POST's body, optionally with
     `"idempotencyKey"`): the server streams the new order's `StatusMessage`s; the first,
     `pending` with `seq` 1, carries the new `orderId`.
3. Every status of the order arrives exactly once, in order, ending with the terminal one
   (`confirmed` or `failed`; a limit or sniper order may also end `cancelled` or
   `expired`, and shows `open` while it waits); then the server closes with **1000**.
   A gateway that shuts down closes with **1001**: reconnect with `?orderId=` for the
   whole history again.
4. A refusal is one text message, an `ErrorBody`, then a close with **1008** and
   `field: rule` as its reason (**1011** for rule `unavailable`: retry; a fault of the
   engine closes with **1011** alone, its reason naming the error id in the log). Rules:
   `unauthorized`, `too_many_connections` (per account, per gateway process), `timeout`
   (no first message in time), `binary` (a binary frame), `size` (a message over 16 KiB),
   `flood` (more than 20 messages/s sustained, bursts of 40), `json`, every order rule of
   this POST (`required`, `type`, `unknown_token`, ...), the submit refusals of this POST
   (`idempotency_key`, `in_flight`, `idempotency_mismatch`, `rate_limited`,
   `open_orders`), `unknown_order`, and `position` (on `/orders/stream`).
5. While streaming, a binary, oversized or flooding client message is refused as above;
   other text messages are ignored.

**WebSocket `/orders/stream`**: every status of every order the account may see (an
operator's: every account's), live, each exactly once and in order per order. Authenticate
as above; each `StatusMessage` then also carries `position`. Reconnect with
`?after=<the last position seen>` to get what was missed, then the live statuses, without a
gap (rule `position` for a malformed one).
"""


Serve = Callable[[Parts, Account, MessageGuard], Awaitable[None]]


async def execute(ws: WebSocket) -> None:
    """Stream ``?orderId=``, or submit the next message and stream that order."""

    async def serve(parts: Parts, account: Account, guard: MessageGuard) -> None:
        order_id = ws.query_params.get("orderId")
        if order_id is None:
            order_id = await submit_next_message(parts, ws, account, guard)
        elif not is_order_id(order_id):
            raise Invalid("orderId", "unknown_order", f"no order {shown(order_id)}")
        await stream_to(parts, ws, send_statuses(parts, ws, order_id, account), guard)

    await session(ws, serve)


async def submit_next_message(parts: Parts, ws: WebSocket, account: Account,
                              guard: MessageGuard) -> str:
    """The id of the order the client's next message submits. Its own function, so that
    the message and the order are not kept while the order is streamed."""
    text = await next_message(ws, guard, "send the order as a message")
    order, key = submit_message(text, new_order_id())
    order = msgspec.structs.replace(order, account=account.name)
    return (await submit(parts, account, order, key)).order_id


async def stream(ws: WebSocket) -> None:
    """Every status of every order the account may see, live; ``?after=POSITION`` first
    resends what came after that position. Without it the stream starts where the log
    stood when the connection opened, so nothing the client does once it is connected can
    be missed while its key is being checked."""
    try:
        opened: Positions | Exception = await parts_of(ws).tail.now()
    except UNAVAILABLE as problem:
        # Answered once the socket is open (error, then 1011): before, it could not be.
        opened = problem

    async def serve(parts: Parts, account: Account, guard: MessageGuard) -> None:
        after_text = ws.query_params.get("after")
        if after_text is not None:
            after = position(after_text, len(parts.store.partitions))
        elif isinstance(opened, Exception):
            raise opened
        else:
            after = opened
        follower = Follower(account, parts.owners, parts.history)
        feed = follow_all(parts.tail, parts.store, parts.read_model, follower, after)
        await stream_to(parts, ws, send_feed(ws, feed), guard)

    await session(ws, serve)


def position(text: str, partitions: int) -> Positions:
    """``?after=``: a position the gateway handed out, or Invalid."""
    try:
        after = Positions.parse(text, partitions)
    except ValueError:
        after = None
    if after is None or not all(
            0 <= i.ms < _MAX_ID_PART and 0 <= i.seq < _MAX_ID_PART for i in after.ids):
        raise Invalid("after", "position", "after must be the position of a status message")
    return after


async def session(ws: WebSocket, serve: Serve) -> None:
    """Authenticate, hold one of the account's connections, then ``serve``."""
    parts = parts_of(ws)
    await ws.accept()
    guard = MessageGuard()
    try:
        account = await authenticate(parts, ws, guard)
        sockets = parts.sockets
        if sockets[account.name] >= parts.settings.max_ws_per_account:
            raise Invalid("x-api-key", "too_many_connections",
                          f"at most {parts.settings.max_ws_per_account} WebSockets per "
                          "account; close one first")
        sockets[account.name] += 1
        try:
            await serve(parts, account, guard)
        finally:
            sockets[account.name] -= 1
            if not sockets[account.name]:
                del sockets[account.name]
    except WebSocketDisconnect:
        pass


async def authenticate(parts: Parts, ws: WebSocket, guard: MessageGuard) -> Account:
    key = ws.headers.get(HEADER)
    if key is None and parts.auth.required:
        key = key_in_message(
            await next_message(ws, guard, "authenticate first", AUTH_TIMEOUT_S))
    account = await parts.auth.account(key)
    if account is None:
        raise unauthorized()
    return account


async def next_message(ws: WebSocket, guard: MessageGuard, what: str,
                       timeout_s: float = FIRST_MESSAGE_TIMEOUT_S) -> str:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout_s)
    except TimeoutError:
        raise Invalid("message", "timeout", f"{what} within {timeout_s:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return guard.check(message)


async def stream_to(parts: Parts, ws: WebSocket, sending_statuses: Coroutine[Any, Any, None],
                    guard: MessageGuard) -> None:
    """Send the statuses from a task while this one listens to the client, until the
    connection closes: the task closes it once the statuses end (1000), when they cannot be
    sent (the error, then 1008 or 1011), or when the gateway goes away (1001: the client
    reconnects elsewhere and gets the full history); the client closes it when it leaves.
    A client that breaks a rule stops the sending, and is answered as every refusal is.
    One task besides the handler's own: a gateway holds thousands of subscriptions."""
    if parts.going_away.is_set():
        sending_statuses.close()
        await close(ws, 1001)
        return
    handler = asyncio.current_task()
    assert handler is not None
    sending = asyncio.create_task(_send_then_close(ws, sending_statuses, parts.going_away))
    parts.subscriptions[handler] = sending
    WS_SUBSCRIBERS.inc()
    try:
        await _listen(ws, guard)
    finally:
        WS_SUBSCRIBERS.dec()
        parts.subscriptions.pop(handler, None)
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)


async def _send_then_close(ws: WebSocket, sending_statuses: Coroutine[Any, Any, None],
                           going_away: asyncio.Event) -> None:
    try:
        await sending_statuses
    except asyncio.CancelledError:
        # By ``go_away``, or by the handler once the client has left or broken a rule.
        if going_away.is_set():
            await close(ws, 1001)
        raise
    except (WebSocketDisconnect, ConnectionError):
        return  # the client left: the handler hears it
    except Exception as problem:
        await answer(ws, problem)
        return
    await close(ws, 1000)


async def send_statuses(parts: Parts, ws: WebSocket, order_id: str, account: Account) -> None:
    statuses = Statuses()
    try:
        async for event in follow(parts.tail, order_id, parts.history_for(account)):
            if (message := statuses.message(event)) is not None:
                await send_status(ws, message, event.at)
            # Not kept while the next event is awaited, maybe for minutes.
            del event, message
    except UnknownOrder:
        raise Invalid("orderId", "unknown_order", f"no order {order_id!r}") from None


async def send_feed(ws: WebSocket, feed: AsyncIterator[StatusMessage]) -> None:
    async for message in feed:
        await send_status(ws, message, message.timestamp)


async def send_status(ws: WebSocket, message: StatusMessage, at: datetime) -> None:
    await ws.send_text(_encoder.encode(message).decode())
    STATUSES_SENT.inc()
    WS_DELIVERY.observe(time.time() - at.timestamp())


async def go_away(parts: Parts, timeout_s: float = 5.0) -> None:
    """Close every subscription with 1001 and wait, briefly, until they are closed: each
    stops sending, and its handler closes."""
    parts.going_away.set()
    handlers = set(parts.subscriptions)
    for sending in parts.subscriptions.values():
        sending.cancel()
    if handlers:
        await asyncio.wait(handlers, timeout=timeout_s)


async def _listen(ws: WebSocket, guard: MessageGuard) -> None:
    """Read what the client sends while it is streamed to, until the connection closes;
    raises Invalid for a binary, oversized or flooding message."""
    while (message := await ws.receive())["type"] != "websocket.disconnect":
        guard.check(message)
