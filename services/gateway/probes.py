"""What operators and their tools read: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable

from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.errors import UNAVAILABLE
from services.gateway.metrics import CONTENT_TYPE, Readings, read
from services.gateway.parts import parts_of
from services.gateway.views import Health, Readiness, json

PROBE_TIMEOUT_S = 2.0
DOWN: tuple[type[Exception], ...] = (*UNAVAILABLE, TimeoutError)


async def healthz(request: Request) -> Response:
    return json(Health("ok"))


async def readyz(request: Request) -> Response:
    """200 only while Redis and PostgreSQL both answer."""
    parts = parts_of(request)
    checks = {"redis": await _probe(parts.store.redis.ping()),
              "postgres": await _probe(parts.read_model.ping())}
    ready = all(v == "ok" for v in checks.values())
    return json(Readiness("ready" if ready else "not ready", checks), 200 if ready else 503)


async def _probe(check: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(check, PROBE_TIMEOUT_S)
    except DOWN as problem:
        return f"unavailable: {type(problem).__name__}"
    return "ok"


async def metrics(request: Request) -> Response:
    parts = parts_of(request)
    readings: Readings | None = None
    # The rest of the metrics still answer while Redis is away.
    with contextlib.suppress(RedisError):
        readings = await read(parts.store, time.time())
    return Response(parts.scrape.render(parts.tail.events_seen, readings),
                    media_type=CONTENT_TYPE)
