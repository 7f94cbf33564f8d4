"""oee replay, audit, export and events against real Redis and PostgreSQL: a log written by
the real services passes; each tamper is caught, naming the order; an export is audited
offline and replayed against the system."""

from __future__ import annotations

import asyncio
import io
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest

from services.cli.audit import AuditOptions, audit
from services.cli.eventlog import Window
from services.cli.export import export
from services.cli.history import events
from services.cli.replay import ReplayOptions, replay
from services.executor.service import main as executor_main
from services.persister.service import main as persister_main
from services.router.service import main as router_main
from shared.config import Range, Settings
from shared.db import migrate
from shared.events import now
from shared.stream import EventStore
from tests.helpers import eventually, order, route_now, running, stories
from tests.infra import fresh_database, make_conninfo_url


class Golden(msgspec.Struct, frozen=True):
    """A database the real services wrote, and what they wrote."""

    settings: Settings
    database: str
    confirmed: list[str]
    failed: str
    rerouted: str


@pytest.fixture(scope="module")
async def golden(redis_url: str, admin_database_url: str) -> AsyncIterator[Golden]:
    with fresh_database(admin_database_url) as url:
        await migrate(url)
        settings = Settings(
            redis_url=redis_url, database_url=url, namespace=f"test-{secrets.token_hex(4)}",
            seed="tests", quote_latency_ms=20, execution_latency_ms=Range(40, 80),
            retry_base_ms=20, block_ms=200,
            # The audit reads the chain's landings and the stream: keep them for the module.
            finished_order_ttl_s=3600, stream_retention_s=3600,
        )
        store = EventStore(settings)
        try:
            yield await _run_the_services(settings, store, url)
        finally:
            async for key in store.redis.scan_iter(match=f"{settings.namespace}:*", count=1000):
                await store.redis.delete(key)
            await store.close()


async def _run_the_services(settings: Settings, store: EventStore, url: str) -> Golden:
    plain = [order(str(uuid.uuid4())) for _ in range(4)]
    slipping, failing = order(str(uuid.uuid4())), order(str(uuid.uuid4()))
    # A route whose bound no fill meets: refused on slippage, routed again, then confirmed.
    impossible = route_now(slipping, settings)
    impossible = msgspec.structs.replace(impossible, min_amount_out=impossible.amount_out * 2)
    every = [*plain, slipping, failing]
    async with running(persister_main, settings), running(router_main, settings):
        async with running(executor_main, settings):
            await store.append([*plain, slipping, impossible])
            await stories(store, [o.order_id for o in [*plain, slipping]])
        failures = msgspec.structs.replace(settings, failure_rate=1.0)
        async with running(executor_main, failures):
            await store.append([failing])
            await stories(store, [failing.order_id])

        async def recorded() -> bool | None:
            backlog = await store.backlog()
            async with await psycopg.AsyncConnection.connect(url) as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM orders WHERE status IN ('confirmed', 'failed')")
                row = await cursor.fetchone()
            return True if backlog.get("persister") == 0 and row == (len(every),) else None

        await eventually(recorded, 30)
    return Golden(settings, url.rsplit("/", 1)[1], [o.order_id for o in plain],
                  failing.order_id, slipping.order_id)


@pytest.fixture
def copy(golden: Golden, admin_database_url: str) -> Iterator[Settings]:
    """A copy of the golden database of this test's own, to tamper with."""
    name = f"{golden.database}_{secrets.token_hex(3)}"
    with psycopg.connect(admin_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{golden.database}"')  # type: ignore[arg-type]
    try:
        url = make_conninfo_url(admin_database_url, name)
        yield msgspec.structs.replace(golden.settings, database_url=url)
    finally:
        with psycopg.connect(admin_database_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


async def run_audit(settings: Settings, **options: Any) -> tuple[int, dict[str, Any]]:
    out = io.StringIO()
    code = await audit(settings, AuditOptions(as_json=True, **options), out)
    return code, msgspec.json.decode(out.getvalue())


def named(report: dict[str, Any], invariant: str) -> set[str]:
    return {v["orderId"] for v in report["violations"] if v["invariant"] == invariant}


async def run_replay(settings: Settings, **options: Any) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await replay(settings, ReplayOptions(progress=False, jobs=2, **options), out, err)
    return code, out.getvalue() + err.getvalue()


async def sql(settings: Settings, statement: str, *args: Any) -> None:
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        await conn.execute(statement, args)  # type: ignore[arg-type]


async def test_the_log_the_services_wrote_replays_and_audits_clean(
    golden: Golden, copy: Settings
) -> None:
    code, text = await run_replay(copy, verify=True, into="rebuilt")
    assert code == 0, text
    assert "replayed 34 events of 6 orders into schema rebuilt" in text
    assert "identical (6 orders)" in text
    async with await psycopg.AsyncConnection.connect(copy.database_url) as conn:
        cursor = await conn.execute("SELECT count(*), count(*) FILTER (WHERE status = 'failed')"
                                    " FROM rebuilt.orders")
        assert await cursor.fetchone() == (6, 1)
    code, text = await run_replay(copy, into="rebuilt")
    assert code == 2 and "exists; pass --replace" in text
    code, text = await run_replay(copy, into="rebuilt", replace=True)
    assert code == 0 and "replayed 34 events of 6 orders into schema rebuilt" in text, text

    code, report = await run_audit(copy)
    assert code == 0, report["violations"]
    checked = {name: tally["checked"] for name, tally in report["invariants"].items()}
    assert report["orders"] == 6 and report["events"] == 34
    assert checked["min_out"] == 5 and checked["signatures"] == 5  # a failed attempt signs nothing
    assert checked["chain"] == 6 and checked["stream"] == 34 and checked["projection"] == 6
    assert not any(tally["skipped"] for tally in report["invariants"].values())


async def test_a_window_audits_whole_orders(golden: Golden, copy: Settings) -> None:
    code, report = await run_audit(copy, window=Window(until=now()))
    assert code == 0 and report["orders"] == 6
    code, report = await run_audit(copy, window=Window(since=now()))
    assert code == 0 and report["orders"] == 0 and report["events"] == 0


@pytest.mark.parametrize("tamper", ["flip a status", "delete an event row",
                                    "duplicate a signature", "drop the terminal event"])
async def test_each_tamper_is_caught_naming_the_order(
    golden: Golden, copy: Settings, tamper: str
) -> None:
    victim, other = golden.confirmed[0], golden.confirmed[1]
    if tamper == "flip a status":
        await sql(copy, "UPDATE orders SET status = 'failed' WHERE order_id = %s", victim)
        caught = {"projection"}
    elif tamper == "delete an event row":
        await sql(copy, "DELETE FROM events WHERE order_id = %s AND type = 'Routed'", victim)
        caught = {"seq", "min_out", "stream"}
    elif tamper == "duplicate a signature":
        await sql(copy, "UPDATE events SET data = jsonb_set(data::jsonb, '{txHash}', "
                        "(SELECT data::jsonb->'txHash' FROM events"
                        " WHERE order_id = %s AND seq = 4))::json"
                        " WHERE order_id = %s AND type IN ('Submitted', 'Confirmed')",
                  other, victim)
        caught = {"signatures", "chain", "stream"}
    else:
        await sql(copy, "DELETE FROM events WHERE order_id = %s AND type = 'Confirmed'", victim)
        caught = {"projection", "stream"}
    code, report = await run_audit(copy)
    assert code == 1
    for invariant in caught:
        assert victim in named(report, invariant), (invariant, report["violations"])
    if tamper == "duplicate a signature":
        assert named(report, "signatures") == {victim, other}
    out = io.StringIO()
    assert await audit(copy, AuditOptions(), out) == 1
    assert victim in out.getvalue() and out.getvalue().endswith("violation(s)\n")

    code, text = await run_replay(copy, verify=True)
    assert code == 1 and f"{victim}  " in text, text
    assert "1 order(s) differ" in text
    if tamper == "flip a status":
        assert f"{victim}  status: live 'failed', rebuilt 'confirmed'" in text


async def test_an_export_audits_offline_and_replays_against_the_system(
    golden: Golden, copy: Settings, tmp_path: Path
) -> None:
    exported = tmp_path / "log.jsonl"
    with exported.open("w") as file:
        assert await export(copy, Window(), file) == 34
    lines = exported.read_text().splitlines()
    first = msgspec.json.decode(lines[0])
    assert set(first) == {"stream", "event"} and first["event"]["type"] == "OrderRequested"

    # Offline: nothing to reach at these addresses, and the audit does not try.
    env = os.environ | {"REDIS_URL": "redis://127.0.0.1:1/0",
                        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "audit", "--from", str(exported), env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stdout.decode()
    assert "projection  skipped: offline" in stdout.decode()
    assert "every invariant holds" in stdout.decode()

    code, text = await run_replay(copy, verify=True, source=exported)
    assert code == 0 and "identical (6 orders)" in text, text

    victim = golden.confirmed[2]
    await sql(copy, "UPDATE orders SET amount_out = amount_out + 1 WHERE order_id = %s", victim)
    code, text = await run_replay(copy, verify=True, source=exported)
    assert code == 1 and f"{victim}  amount_out" in text, text

    # An export with an event cut out is caught offline.
    cut = [line for line in lines if not (victim in line and '"Built"' in line)]
    (tmp_path / "cut.jsonl").write_text("\n".join(cut) + "\n")
    code, report = await run_audit(copy, source=tmp_path / "cut.jsonl")
    assert (code, named(report, "seq")) == (1, {victim}), report


async def test_events_shows_an_order_to_a_person(golden: Golden, copy: Settings) -> None:
    out = io.StringIO()
    assert await events(copy, golden.rerouted, False, out) == 0
    text = out.getvalue()
    assert text.startswith(f"order {golden.rerouted}: 0.5 SOL -> USDC, confirmed")
    kinds = [line.split()[3] for line in text.splitlines()[3:]]
    assert kinds == ["OrderRequested", "Routed", "Built", "AttemptFailed", "Rerouted",
                     "Submitted", "Confirmed"]
    assert "attempt 1 slippage: SlippageExceeded" in text and "routed again via" in text

    out = io.StringIO()
    assert await events(copy, golden.failed, True, out) == 0
    lines = [msgspec.json.decode(line) for line in out.getvalue().splitlines()]
    assert [line["event"]["type"] for line in lines][-1] == "Failed"

    out = io.StringIO()
    assert await events(copy, "no-such-order", False, out) == 1
    assert out.getvalue() == "no events of order no-such-order\n"


def test_replay_verify_as_a_command(golden: Golden, copy: Settings) -> None:
    env = os.environ | {"DATABASE_URL": copy.database_url, "REDIS_URL": copy.redis_url,
                        "OEE_NAMESPACE": copy.namespace, "OEE_SEED": copy.seed}
    done = subprocess.run([sys.executable, "-m", "services.cli", "replay", "--verify"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "identical (6 orders)" in done.stdout and "replaying" in done.stderr
