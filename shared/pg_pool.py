"""The connection pool for a long-running process's PostgreSQL reads (the gateway's read
model and its key lookups).

The pool opens no connection of its own (``min_size=0``): each is opened when a caller
finds none idle, and kept for the next. While PostgreSQL is down a caller waits at most
``wait_s`` for a connection, then gets ``PoolTimeout`` (an ``OperationalError``, which the
gateway answers with 503). The pool's background reconnection gives up after
``RECONNECT_S``, so the first caller once PostgreSQL is back starts a fresh attempt instead
of waiting out a backoff that grew while it was down.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

# As long as one connection attempt may take: nobody waits longer for a connection.
WAIT_S = 2.0
RECONNECT_S = 2.0


def pool(database_url: str, size: int, name: str, *, row_factory: Any = None,
         wait_s: float = WAIT_S) -> AsyncConnectionPool[Any]:
    """At most ``size`` autocommit connections, opened on demand. Not open yet: call
    ``await pool.open()`` in the event loop that uses it."""
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": 2}
    if row_factory is not None:
        kwargs["row_factory"] = row_factory
    return AsyncConnectionPool(
        database_url, kwargs=kwargs, min_size=0, max_size=size, open=False, name=name,
        timeout=wait_s, reconnect_timeout=RECONNECT_S,
    )
