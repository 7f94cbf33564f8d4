"""API keys against a real PostgreSQL: making, listing, revoking, and the gateway's Keyring."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from services.cli.up import provision_key
from shared.accounts import (
    Account,
    AccountExists,
    InvalidName,
    Keyring,
    account_of,
    any_key,
    create_key,
    hash_secret,
    list_keys,
    new_key,
    parse_key,
    revoke_key,
)
from shared.db import migrate
from tests.helpers import Outage, eventually
from tests.infra import fresh_database

ROOT = Path(__file__).resolve().parents[2]


def unique(prefix: str) -> str:
    """The test database is shared by the whole run: every test makes accounts of its own."""
    return f"{prefix}-{secrets.token_hex(4)}"


async def new_account(database_url: str, prefix: str) -> tuple[str, str]:
    """A trader account of this test's own, and its key."""
    name = unique(prefix)
    return name, await create_key(database_url, name)


async def opened(keyring: Keyring) -> Keyring:
    await keyring.open()
    return keyring


@pytest.fixture
async def keyring(database_url: str) -> AsyncIterator[Keyring]:
    keyring = await opened(Keyring(database_url, ttl_s=0.2))
    yield keyring
    await keyring.close()


async def last_used(database_url: str, name: str) -> object:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute("SELECT last_used_at FROM api_keys WHERE name = %s", (name,))
        row = await cursor.fetchone()
        assert row is not None
        return row[0]


async def test_create_list_and_revoke(database_url: str) -> None:
    trader, operator = unique("trader"), unique("operator")
    await create_key(database_url, trader)
    await create_key(database_url, operator, operator=True)
    listed = {k.name: k for k in await list_keys(database_url)}
    assert listed[trader].role == "trader" and listed[operator].role == "operator"
    assert listed[trader].created_at is not None
    assert listed[trader].last_used_at is None and listed[trader].revoked_at is None
    assert await any_key(database_url)

    assert await revoke_key(database_url, trader)
    first = {k.name: k for k in await list_keys(database_url)}[trader].revoked_at
    assert first is not None
    assert await revoke_key(database_url, trader)  # again: still revoked, since the first time
    assert {k.name: k for k in await list_keys(database_url)}[trader].revoked_at == first
    assert {k.name: k for k in await list_keys(database_url)}[operator].revoked_at is None
    assert not await revoke_key(database_url, unique("nobody"))


async def test_a_name_is_taken_once_even_after_revocation(database_url: str) -> None:
    name = unique("dup")
    await create_key(database_url, name)
    with pytest.raises(AccountExists, match=name):
        await create_key(database_url, name, operator=True)
    await revoke_key(database_url, name)
    with pytest.raises(AccountExists):
        await create_key(database_url, name)
    assert [k.role for k in await list_keys(database_url) if k.name == name] == ["trader"]


async def test_an_invalid_name_makes_no_row(database_url: str) -> None:
    with pytest.raises(InvalidName):
        await create_key(database_url, "Not Valid")
    assert "Not Valid" not in {k.name for k in await list_keys(database_url)}


async def test_any_key_is_false_on_a_database_without_keys(admin_database_url: str) -> None:
    with fresh_database(admin_database_url) as url:
        await migrate(url)
        assert not await any_key(url)
        await create_key(url, "first")
        assert await any_key(url)


async def test_keyring_accepts_a_good_key(database_url: str, keyring: Keyring) -> None:
    name = unique("good")
    key = await create_key(database_url, name, operator=True)
    assert await keyring.authenticate(key) == Account(name, "operator")
    trader = unique("good")
    assert await keyring.authenticate(await create_key(database_url, trader)) == Account(
        trader, "trader")


async def test_keyring_refuses_missing_malformed_unknown_and_wrong_keys(
    database_url: str, keyring: Keyring
) -> None:
    key = await create_key(database_url, unique("victim"))
    parsed = parse_key(key)
    assert parsed is not None
    wrong_secret = f"oee_{parsed.key_id}_{new_key()[-43:]}"
    for refused in [None, "", "Bearer x", key[:-1], key + "x", new_key(), wrong_secret]:
        assert await keyring.authenticate(refused) is None, refused
    # A wrong secret is refused from the cache as well as from the database.
    assert await keyring.authenticate(key) is not None
    assert await keyring.authenticate(wrong_secret) is None


async def test_a_revoked_key_is_refused_within_the_ttl(
    database_url: str, keyring: Keyring
) -> None:
    name, key = await new_account(database_url, "revoked")
    assert await keyring.authenticate(key) == Account(name, "trader")
    await revoke_key(database_url, name)
    revoked_at = time.monotonic()

    async def refused() -> bool | None:
        return True if await keyring.authenticate(key) is None else None

    await eventually(refused, timeout_s=5)
    assert time.monotonic() - revoked_at < keyring.ttl_s + 1.0
    assert await keyring.authenticate(key) is None


async def test_answers_come_from_the_cache_within_the_ttl(database_url: str) -> None:
    name, key = await new_account(database_url, "cached")
    unknown = new_key()
    async with Outage(database_url) as outage:
        keyring = await opened(Keyring(outage.url, ttl_s=60, wait_s=0.5))
        try:
            assert await keyring.authenticate(key) is not None
            assert await keyring.authenticate(unknown) is None
            await outage.cut()  # any query from now on would fail
            for _ in range(100):
                assert await keyring.authenticate(key) == Account(name, "trader")
                assert await keyring.authenticate(unknown) is None
        finally:
            await keyring.close()


async def test_last_used_is_recorded_at_most_once_per_ttl(
    database_url: str, keyring: Keyring
) -> None:
    name, key = await new_account(database_url, "used")
    assert await last_used(database_url, name) is None
    long_lived = await opened(Keyring(database_url, ttl_s=60))
    try:
        assert await long_lived.authenticate(key) is not None

        async def recorded() -> object:
            return await last_used(database_url, name)

        first = await eventually(recorded, timeout_s=5)
        for _ in range(50):
            assert await long_lived.authenticate(key) is not None
        # Within its ttl the entry is touched already: no further write was started.
        assert not long_lived._touches
        assert await last_used(database_url, name) == first
    finally:
        await long_lived.close()

    # With a short ttl, later use moves it on.
    async def moved() -> bool | None:
        await keyring.authenticate(key)
        return True if await last_used(database_url, name) != first else None

    await eventually(moved, timeout_s=5)


async def test_while_postgres_is_down_only_a_recently_good_key_passes(
    database_url: str,
) -> None:
    good, revoked = unique("grace"), unique("grace-revoked")
    good_key = await create_key(database_url, good)
    revoked_key = await create_key(database_url, revoked)
    await revoke_key(database_url, revoked)
    outage = await Outage(database_url).__aenter__()
    keyring = await opened(Keyring(outage.url, ttl_s=0.05, grace_s=60, wait_s=0.5))
    strict = await opened(Keyring(outage.url, ttl_s=0.05, grace_s=0, wait_s=0.5))
    try:
        for ring in (keyring, strict):
            assert await ring.authenticate(good_key) is not None
            assert await ring.authenticate(revoked_key) is None
        await outage.cut()

        async def expired() -> bool | None:
            # Once past its ttl the entry is looked up again, and that fails.
            try:
                await strict.authenticate(good_key)
            except psycopg.OperationalError:
                return True
            return None

        await eventually(expired, timeout_s=5)
        assert await keyring.authenticate(good_key) == Account(good, "trader")
        assert await keyring.authenticate(revoked_key) is None
        assert await strict.authenticate(revoked_key) is None
        with pytest.raises(psycopg.OperationalError):
            await keyring.authenticate(new_key())  # unknown: cannot say, so 503
    finally:
        await keyring.close()
        await strict.close()
        await outage.cut()


async def test_concurrent_requests_with_one_key_agree(
    database_url: str, keyring: Keyring
) -> None:
    name, key = await new_account(database_url, "burst")
    answers = await asyncio.gather(*(keyring.authenticate(key) for _ in range(200)))
    assert set(answers) == {Account(name, "trader")}


async def test_the_key_is_stored_nowhere_in_postgres(
    database_url: str, keyring: Keyring
) -> None:
    name, key = await new_account(database_url, "secret")
    parsed = parse_key(key)
    assert parsed is not None
    assert await keyring.authenticate(key) is not None
    await eventually(lambda: last_used(database_url, name), timeout_s=5)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'api_keys' AND data_type IN ('text', 'bytea')"
        )
        columns = {column: kind for column, kind in await cursor.fetchall()}
        assert {"name", "key_id", "secret_hash", "role"} <= set(columns)
        cursor = await conn.execute(
            sql.SQL("SELECT {} FROM api_keys WHERE name = %s").format(
                sql.SQL(", ").join(map(sql.Identifier, columns))),
            (name,),
        )
        row = await cursor.fetchone()
    assert row is not None
    stored = dict(zip(columns, row, strict=True))
    for column, value in stored.items():
        if isinstance(value, bytes):
            for needle in (key, parsed.secret):
                assert needle.encode() not in value, column
                assert needle.encode().hex() not in value.hex(), column
        else:
            assert value is None or isinstance(value, str)
            for needle in (key, parsed.secret):
                assert value is None or needle not in value, column
    assert stored["secret_hash"] == hash_secret(parsed.secret)


async def oee_keys(database_url: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "keys", *args, cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_cli_create_prints_the_key_last_and_revoke_refuses_it(
    database_url: str, keyring: Keyring
) -> None:
    name = unique("cli")
    code, out, err = await oee_keys(database_url, "create", name, "--operator")
    assert code == 0, err
    key = out.splitlines()[-1]
    assert parse_key(key) is not None
    assert key not in err and out.count(key) == 1
    assert await keyring.authenticate(key) == Account(name, "operator")

    code, out, err = await oee_keys(database_url, "list")
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    assert line.split()[1] == "operator"
    assert "oee_" not in out

    code, out, err = await oee_keys(database_url, "revoke", name)
    assert code == 0, err

    async def refused() -> bool | None:
        return True if await keyring.authenticate(key) is None else None

    await eventually(refused, timeout_s=5)
    code, out, err = await oee_keys(database_url, "list")
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    assert line.split()[-1].endswith("Z")  # the revocation's time, not a dash


async def test_cli_refuses_taken_invalid_and_unknown_names(database_url: str) -> None:
    name = unique("cli-taken")
    assert (await oee_keys(database_url, "create", name))[0] == 0
    code, out, err = await oee_keys(database_url, "create", name)
    assert code == 1 and "exists" in err and "oee_" not in out
    code, _, err = await oee_keys(database_url, "create", "Bad Name")
    assert code == 1 and "invalid account name" in err
    code, _, err = await oee_keys(database_url, "revoke", unique("nobody"))
    assert code == 1 and "no account" in err


def test_the_first_up_makes_a_private_operator_key_then_only_points_at_it(
    admin_database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data" / "api-key"
    with fresh_database(admin_database_url) as url:
        asyncio.run(migrate(url))
        provision_key(url, path)
        out = capsys.readouterr().out.splitlines()
        key = path.read_text().strip()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert out[-2] == f"oee: operator key (also in {path}):" and out[-1] == key
        assert asyncio.run(account_of(url, key)) == Account("admin", "operator")

        provision_key(url, path)  # a later start: the key stays, and is not printed
        out = capsys.readouterr().out
        assert path.read_text().strip() == key and key not in out and "'admin'" in out

        path.unlink()
        provision_key(url, path)
        assert "oee keys create NAME --operator" in capsys.readouterr().out
        assert not path.exists()

        path.write_text("oee_notarealkeyid_" + "x" * 43)
        provision_key(url, path)
        assert "refuses" in capsys.readouterr().out
        assert [k.name for k in asyncio.run(list_keys(url))] == ["admin"]


async def test_a_flood_of_unknown_keys_keeps_the_cache_bounded(database_url: str) -> None:
    name, key = await new_account(database_url, "bounded")
    keyring = await opened(Keyring(database_url, ttl_s=60, max_entries=10))
    try:
        assert await keyring.authenticate(key) is not None
        for _ in range(30):
            assert await keyring.authenticate(new_key()) is None
        assert len(keyring._entries) == 10
        assert await keyring.authenticate(key) == Account(name, "trader")  # looked up again
    finally:
        await keyring.close()
