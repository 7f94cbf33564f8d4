"""Start-up checks: a process that cannot start says why in one line and exits at once.

Once running, the services ride out a Redis or PostgreSQL that goes away for a while (they
retry); at start-up the same retrying would hide a wrong URL or a server that is not there,
and a taken port would leave a gateway that serves nothing. So before a service starts, one
connection to each server it needs, with a short timeout, a bind of each port it will
listen on, and the partition count Redis holds (taken, or checked against
``OEE_PARTITIONS``)."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import psycopg
import redis
from redis.exceptions import RedisError

from shared.config import Settings

# Long enough for a server on a busy machine; short enough that a wrong address fails now.
CONNECT_TIMEOUT_S = 5
# Which servers each service talks to.
NEEDS_POSTGRES = frozenset({"gateway", "persister"})


class CannotStart(Exception):
    """Why a process cannot start, in words for the one line it prints."""


def check(service: str, settings: Settings) -> None:
    """Raises CannotStart unless ``service`` can start with ``settings``."""
    if service == "gateway":
        port_is_free(settings.host, settings.port, "PORT")
    elif settings.metrics_port:
        port_is_free(settings.host, settings.metrics_port, "OEE_METRICS_PORT")
    redis_answers(settings.redis_url)
    partitions_agree(settings)
    if service in NEEDS_POSTGRES:
        postgres_answers(settings.database_url)


def port_is_free(host: str, port: int, name: str) -> None:
    """Binds the port as the server will (SO_REUSEADDR, as uvicorn and the metrics server
    bind), then lets it go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise CannotStart(f"port {port} on {host} ({name}) is taken: "
                              f"{error.strerror or error}") from None


def redis_answers(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S,
                                  socket_timeout=CONNECT_TIMEOUT_S)
    try:
        client.ping()
    except RedisError as error:
        raise CannotStart(f"Redis at {where(url)} does not answer (REDIS_URL): "
                          f"{error}") from None
    finally:
        client.close()


def partitions_agree(settings: Settings) -> None:
    # Imported here: every `oee` command imports this module, and most need no store.
    from shared.partitions import PartitionMismatch
    from shared.stream import PartitionsUnknown, RedisTooOld, recorded_partitions

    try:
        recorded_partitions(settings)
    except (PartitionMismatch, PartitionsUnknown, RedisTooOld) as problem:
        raise CannotStart(str(problem)) from None


def postgres_answers(url: str) -> None:
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg.Error as error:
        reason = " ".join(str(error).split())
        raise CannotStart(f"PostgreSQL at {where(url)} does not answer (DATABASE_URL): "
                          f"{reason}") from None


def where(url: str) -> str:
    """A server's host and port, without the credentials a URL may carry."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
