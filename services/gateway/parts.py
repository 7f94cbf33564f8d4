"""The gateway's parts, built once per process and reached by every handler through
``parts_of(request)``; and ``keyed``, which gives a handler the account behind the key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from services.gateway.auth import HEADER, Authenticator, unauthorized
from services.gateway.errors import Refusal
from services.gateway.feed import Owners
from services.gateway.idempotency import IdempotencyKeys
from services.gateway.limits import Limits
from services.gateway.metrics import Scrape
from services.gateway.read_model import ReadModel
from services.gateway.subscriptions import History, Tail
from shared.accounts import Account
from shared.config import Settings
from shared.events import AnyEvent, OrderRequested
from shared.launches import Launches
from shared.market import Market
from shared.stream import OPEN_ORDER_TTL_S, EventStore

log = logging.getLogger("oee.gateway")

# How long a stopping gateway waits for its log tail to end.
TAIL_STOP_S = 2.0

KeyedHandler = Callable[[Request, Account], Awaitable[Response]]


class Parts:
    """Everything the handlers use; the flows live in the handlers' own modules."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = EventStore(settings)
        self.read_model = ReadModel(settings.database_url)
        self.tail = Tail(self.store)
        self.scrape = Scrape()
        self.market = Market.from_settings(settings)
        self.launches = Launches(self.store.redis, settings.namespace)
        self.auth = Authenticator(settings.auth, settings.database_url)
        self.limits = Limits(self.store, settings.rate_limit_per_min, settings.max_open_orders,
                             OPEN_ORDER_TTL_S)
        self.idempotency = IdempotencyKeys(self.store.redis, settings.namespace,
                                           settings.idempotency_ttl_s)
        self.owners = Owners(self.history)
        # Open WebSockets per account on this process.
        self.sockets: Counter[str] = Counter()
        # Set on SIGTERM: every subscription closes with 1001 before the server stops.
        self.going_away = asyncio.Event()
        # Each subscription's handling task, and the task sending its statuses.
        self.subscriptions: dict[asyncio.Task[Any], asyncio.Task[None]] = {}

    async def history(self, order_id: str) -> list[AnyEvent]:
        # Redis holds recent orders, consistent with the stream; PostgreSQL holds them all.
        return await self.store.history(order_id) or await self.read_model.events(order_id)

    def history_for(self, account: Account) -> History:
        """The history of orders ``account`` may see; another account's order has none,
        exactly like an order that does not exist."""
        async def history(order_id: str) -> list[AnyEvent]:
            events = await self.history(order_id)
            return events if owns(account, events) else []
        return history

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.read_model.open()
        await self.auth.open()
        try:
            await self.tail.start()
        except RedisError:
            log.warning("Redis is unavailable at start; the partition count goes unchecked")
        tail_task = asyncio.create_task(self.tail.run())
        try:
            yield
        finally:
            tail_task.cancel()
            # A read blocked in Redis may take its time to notice; the process is leaving
            # anyway, and a stop must not wait on it.
            await asyncio.wait({tail_task}, timeout=TAIL_STOP_S)
            await self.auth.close()
            await self.read_model.close()
            await self.store.close()


def owns(account: Account, events: list[AnyEvent]) -> bool:
    """Whether ``account`` may see the order of ``events``: its own, or any for operators."""
    if account.is_operator:
        return True
    return any(isinstance(e, OrderRequested) and e.account == account.name for e in events)


def parts_of(conn: HTTPConnection) -> Parts:
    parts: Parts = conn.app.state.parts
    return parts


def keyed(handler: KeyedHandler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` for requests with a valid key; 401 for the others."""
    async def endpoint(request: Request) -> Response:
        account = await parts_of(request).auth.account(request.headers.get(HEADER))
        if account is None:
            raise Refusal(401, unauthorized(), {"WWW-Authenticate": "ApiKey"})
        return await handler(request, account)
    return endpoint
