"""Accounts and their API keys.

A key reads ``oee_<key_id>_<secret>``. The key id (12 base32 characters) finds the row in
``api_keys``; only the SHA-256 of the secret is stored, and it is compared in constant time.
The key itself is shown once, when it is made, and is recorded nowhere: logs, events and
PostgreSQL only ever hold the account's name.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import time
from datetime import datetime
from typing import Literal

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool

from shared.pg_pool import WAIT_S, pool

log = logging.getLogger(__name__)

Role = Literal["trader", "operator"]

KEY_PREFIX = "oee"
KEY_ID_LENGTH = 12
KEY_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
# 32 bytes of entropy, url-safe base64 without padding: 43 characters.
SECRET_BYTES = 32
_KEY = re.compile(rf"{KEY_PREFIX}_([{KEY_ID_ALPHABET}]{{{KEY_ID_LENGTH}}})_([A-Za-z0-9_-]{{43}})")
ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


class Account(msgspec.Struct, frozen=True):
    name: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


# Every request acts as this account when OEE_AUTH=off.
LOCAL = Account("local", "operator")


class KeyInfo(msgspec.Struct, frozen=True):
    """What ``oee keys list`` shows of a key: never the key itself."""

    name: str
    role: Role
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class AccountError(Exception):
    """A key cannot be made or changed as asked."""


class InvalidName(AccountError, ValueError):
    pass


class AccountExists(AccountError):
    pass


class ParsedKey(msgspec.Struct, frozen=True):
    key_id: str
    secret: str


def validate_name(name: str) -> str:
    if not ACCOUNT_NAME.fullmatch(name):
        raise InvalidName(
            f"invalid account name {name!r}: 1 to 63 characters, lower-case letters, digits,"
            " '_', '.' or '-', starting with a letter or digit"
        )
    return name


def new_key() -> str:
    key_id = "".join(secrets.choice(KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    return f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse_key(key: str | None) -> ParsedKey | None:
    """The key's id and secret, or None when it is not shaped like a key."""
    if key is None:
        return None
    match = _KEY.fullmatch(key)
    return ParsedKey(match[1], match[2]) if match else None


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def secret_matches(secret: str, secret_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), secret_hash)


async def _connect(database_url: str) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(database_url, autocommit=True, connect_timeout=5)


async def create_key(database_url: str, name: str, *, operator: bool = False) -> str:
    """A new key for a new account ``name``; the key is returned and nowhere kept."""
    validate_name(name)
    role: Role = "operator" if operator else "trader"
    async with await _connect(database_url) as conn:
        while True:
            key = new_key()
            parsed = parse_key(key)
            assert parsed is not None
            try:
                cursor = await conn.execute(
                    "INSERT INTO api_keys (name, key_id, secret_hash, role)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING name",
                    (name, parsed.key_id, hash_secret(parsed.secret), role),
                )
            except psycopg.errors.UniqueViolation:
                continue  # the random key id is taken already: draw another
            if await cursor.fetchone() is None:
                raise AccountExists(f"account {name!r} exists already")
            return key


async def list_keys(database_url: str) -> list[KeyInfo]:
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT name, role, created_at, last_used_at, revoked_at FROM api_keys"
            " ORDER BY created_at, name"
        )
        rows = await cursor.fetchall()
    return [msgspec.convert(dict(zip(KeyInfo.__struct_fields__, row, strict=True)), KeyInfo)
            for row in rows]


async def revoke_key(database_url: str, name: str) -> bool:
    """Revoke the key of account ``name``; False when there is no such account. Revoking
    twice keeps the first revocation's time."""
    async with await _connect(database_url) as conn:
        cursor = await conn.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
            " WHERE name = %s RETURNING name",
            (name,),
        )
        return await cursor.fetchone() is not None


async def any_key(database_url: str) -> bool:
    """Whether any key was ever made (revoked ones count)."""
    async with await _connect(database_url) as conn:
        cursor = await conn.execute("SELECT EXISTS (SELECT 1 FROM api_keys)")
        row = await cursor.fetchone()
        return bool(row and row[0])


class _Row(msgspec.Struct, frozen=True):
    account: Account
    secret_hash: bytes
    revoked: bool


class _Entry(msgspec.Struct):
    row: _Row | None  # None: no such key id
    fetched_at: float
    # Whether last_used_at was written for this entry: at most once per entry, so once per
    # key per ttl.
    touched: bool = False


class Keyring:
    """Who a key belongs to, for a gateway answering many requests a second.

    Each key id's row is cached for ``ttl_s``, unknown ids included, so a flood of one bad
    key costs one query per ``ttl_s``, and a revocation reaches every gateway within
    ``ttl_s``. Concurrent lookups of one id share a single query. ``last_used_at`` is
    written at most once per key per ``ttl_s``, off the request's path.

    Its connections come from a pool (``shared.pg_pool``) of at most ``size``. When
    PostgreSQL cannot be reached, ``authenticate`` raises ``psycopg.OperationalError``
    (``PoolTimeout`` after ``wait_s``; the gateway answers 503) unless the key id was seen
    recently: a key known good is still accepted for ``grace_s`` beyond its ``ttl_s`` (a
    revocation made meanwhile is missed for that long), and a key known revoked stays
    refused. A row's name, role and hash never
    change, so only a revocation can make a stale entry wrong.
    """

    def __init__(
        self, database_url: str, ttl_s: float = 2.0, *, grace_s: float = 30.0,
        max_entries: int = 100_000, size: int = 4, wait_s: float = WAIT_S,
    ) -> None:
        self.ttl_s = ttl_s
        self.grace_s = grace_s
        self.max_entries = max_entries
        self.pool: AsyncConnectionPool[psycopg.AsyncConnection[tuple[object, ...]]] = pool(
            database_url, size, "oee-keyring", wait_s=wait_s)
        self._entries: dict[str, _Entry] = {}
        self._lookups: dict[str, asyncio.Task[_Entry]] = {}
        self._touches: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        await self.pool.open()

    async def authenticate(self, key: str | None) -> Account | None:
        """The key's account; None for a missing, malformed, unknown or revoked key."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        entry = await self._entry(parsed.key_id)
        row = entry.row
        if row is None or row.revoked or not secret_matches(parsed.secret, row.secret_hash):
            return None
        if not entry.touched:
            entry.touched = True
            task = asyncio.create_task(self._touch(parsed.key_id))
            self._touches.add(task)
            task.add_done_callback(self._touches.discard)
        return row.account

    async def close(self) -> None:
        for task in [*self._lookups.values(), *self._touches]:
            task.cancel()
        await asyncio.gather(*self._lookups.values(), *self._touches, return_exceptions=True)
        await self.pool.close()

    async def _entry(self, key_id: str) -> _Entry:
        now = time.monotonic()
        cached = self._entries.get(key_id)
        if cached is not None and now - cached.fetched_at < self.ttl_s:
            return cached
        lookup = self._lookups.get(key_id)
        if lookup is None:
            lookup = asyncio.create_task(self._fetch(key_id))
            self._lookups[key_id] = lookup
            lookup.add_done_callback(self._lookup_done)
        try:
            # Shielded: one caller giving up must not cancel the query for the others.
            return await asyncio.shield(lookup)
        except psycopg.OperationalError:
            if cached is not None and cached.row is not None and (
                cached.row.revoked or now - cached.fetched_at < self.ttl_s + self.grace_s
            ):
                return cached
            raise

    async def _fetch(self, key_id: str) -> _Entry:
        async with self.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT name, role, secret_hash, revoked_at IS NOT NULL"
                " FROM api_keys WHERE key_id = %s",
                (key_id,),
            )
            found = await cursor.fetchone()
        row = None
        if found is not None:
            name, role, secret_hash, revoked = found
            assert isinstance(secret_hash, bytes)
            account = msgspec.convert({"name": name, "role": role}, Account)
            row = _Row(account, secret_hash, bool(revoked))
        entry = _Entry(row, time.monotonic())
        self._remember(key_id, entry)
        return entry

    def _lookup_done(self, lookup: asyncio.Task[_Entry]) -> None:
        for key_id, task in list(self._lookups.items()):
            if task is lookup:
                del self._lookups[key_id]
        if not lookup.cancelled():
            lookup.exception()  # retrieved, even when every caller gave up waiting

    def _remember(self, key_id: str, entry: _Entry) -> None:
        self._entries.pop(key_id, None)
        self._entries[key_id] = entry
        while len(self._entries) > self.max_entries:
            # Oldest first: dicts keep insertion order, and every refresh re-inserts.
            del self._entries[next(iter(self._entries))]

    async def _touch(self, key_id: str) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE api_keys SET last_used_at = now() WHERE key_id = %s", (key_id,)
                )
        except psycopg.OperationalError as problem:
            log.warning("could not record a key's last use: %s", problem)


async def account_of(database_url: str, key: str) -> Account | None:
    """Whose key this is, as a gateway would see it; None when the database refuses it."""
    keyring = Keyring(database_url)
    await keyring.open()
    try:
        return await keyring.authenticate(key)
    finally:
        await keyring.close()
