"""What a module of end-to-end tests shares once it names its own ``namespace`` and
``running`` system."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bench.harness import System
from shared.config import Settings
from shared.stream import EventStore
from tests.conftest import cleanup


@pytest.fixture(scope="module")
async def store(running: System, redis_url: str, namespace: str) -> AsyncIterator[EventStore]:
    # In place of tests/conftest.py's: one per module, reading the running system's
    # namespace, which is cleaned once the module's last test is done with it.
    store = EventStore(Settings(redis_url=redis_url, namespace=namespace, block_ms=200))
    yield store
    await cleanup(store.redis, namespace)
    await store.close()


@pytest.fixture
async def client(running: System) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=running.url, timeout=10) as client:
        yield client
