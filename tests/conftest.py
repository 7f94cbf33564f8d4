from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from shared.config import Range, Settings
from shared.db import migrate
from shared.stream import EventStore
from tests.infra import fresh_database, postgres_server, redis_cluster, redis_server

pytest_plugins = ["tests.clean_tree"]  # the run leaves the work tree as it found it


@contextlib.contextmanager
def reachable_dir() -> Iterator[Path]:
    """A folder for embedded servers' data. Not under pytest's tmp folder: that is private
    to root, and the embedded PostgreSQL runs as an unprivileged user under root."""
    path = Path(tempfile.mkdtemp(prefix="oee-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def scratch() -> Iterator[Path]:
    with reachable_dir() as path:
        yield path


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A folder of one test's own for embedded servers."""
    with reachable_dir() as path:
        yield path


# Every integration test that takes ``redis_url`` runs on a single Redis and on a Redis
# Cluster. An end-to-end test does when it carries the ``cluster`` marker: the whole doubled
# end-to-end suite would take minutes more for little more coverage.
_ON_BOTH = Path(__file__).parent / "integration"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marked = metafunc.definition.get_closest_marker("cluster") is not None
    if "redis_url" not in metafunc.fixturenames:
        if marked:
            pytest.fail(f"{metafunc.definition.nodeid} is marked cluster but takes no"
                        " redis_url: nothing would run it on a cluster", pytrace=False)
        return
    both = marked or metafunc.definition.path.is_relative_to(_ON_BOTH)
    metafunc.parametrize("redis_url", ["single", "cluster"] if both else ["single"],
                         indirect=True, scope="session")


@pytest.fixture(scope="session")
def single_redis_url(scratch: Path) -> Iterator[str]:
    with redis_server(scratch) as url:
        yield url


@pytest.fixture(scope="session")
def cluster_url(scratch: Path) -> Iterator[str]:
    with redis_cluster(scratch) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """A single Redis, or any node of a Redis Cluster (the test's id says which)."""
    kind = getattr(request, "param", "single")
    url: str = request.getfixturevalue("cluster_url" if kind == "cluster" else
                                       "single_redis_url")
    return url


@pytest.fixture(scope="session")
def admin_database_url(scratch: Path) -> Iterator[str]:
    with postgres_server(scratch) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(admin_database_url: str) -> Iterator[str]:
    """A database of this test run's own, migrated."""
    with fresh_database(admin_database_url) as url:
        asyncio.run(migrate(url))
        yield url


@pytest.fixture
def namespace() -> str:
    return f"test-{secrets.token_hex(4)}"


@pytest.fixture
def settings(redis_url: str, database_url: str, namespace: str) -> Settings:
    return Settings(
        redis_url=redis_url,
        database_url=database_url,
        namespace=namespace,
        seed="tests",
        quote_latency_ms=20,
        execution_latency_ms=Range(40, 80),
        retry_base_ms=20,
        block_ms=200,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[EventStore]:
    store = EventStore(settings)
    yield store
    await cleanup(store.redis, settings.namespace)
    await store.close()


async def cleanup(redis: aioredis.Redis, namespace: str) -> None:
    async for key in redis.scan_iter(match=f"{namespace}:*", count=1000):
        await redis.delete(key)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn
