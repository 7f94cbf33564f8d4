"""``oee keys create|list|revoke``: API keys, one per account.

A new key is printed once, alone on the last line of stdout, so a script can take it with
``tail -n 1``; nothing else ever shows it again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import psycopg

from shared.accounts import AccountError, KeyInfo, create_key, list_keys, revoke_key
from shared.config import load
from shared.db import migrate


def create(name: str, operator: bool) -> int:
    return _run(_create(name, operator))


def show() -> int:
    return _run(_show())


def revoke(name: str) -> int:
    return _run(_revoke(name))


async def _create(name: str, operator: bool) -> int:
    database_url = await _ready()
    key = await create_key(database_url, name, operator=operator)
    role = "operator" if operator else "trader"
    print(f"oee: {role} key for account {name!r}; it is shown only this once:")
    print(key, flush=True)
    return 0


async def _show() -> int:
    keys = await list_keys(await _ready())
    print(_table(keys))
    return 0


async def _revoke(name: str) -> int:
    if not await revoke_key(await _ready(), name):
        print(f"oee: no account named {name!r} (see oee keys list)", file=sys.stderr)
        return 1
    print(f"oee: key of account {name!r} revoked; gateways refuse it within seconds")
    return 0


async def _ready() -> str:
    """The database, migrated, so that a fresh one works."""
    database_url = load().database_url
    await migrate(database_url)
    return database_url


def _run(command: Coroutine[Any, Any, int]) -> int:
    try:
        result = asyncio.run(command)
    except AccountError as problem:
        print(f"oee: {problem}", file=sys.stderr)
        return 1
    except psycopg.OperationalError as problem:
        print(f"oee: cannot reach PostgreSQL (DATABASE_URL): {problem}", file=sys.stderr)
        return 1
    return result


def _table(keys: list[KeyInfo]) -> str:
    rows = [("NAME", "ROLE", "CREATED", "LAST USED", "REVOKED")]
    rows += [
        (k.name, k.role, _when(k.created_at), _when(k.last_used_at, "never"),
         _when(k.revoked_at, "-"))
        for k in keys
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _when(at: datetime | None, missing: str = "") -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if at else missing
