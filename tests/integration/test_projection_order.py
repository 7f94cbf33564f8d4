"""The PostgreSQL projection never goes stale: the golden stories recorded in batches cut
anywhere, in any order, each batch any number of times (redeliveries, racing persisters),
give the rows that folding each whole story gives."""

from __future__ import annotations

import json
import random
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import pytest

from services.persister.records import record
from shared.events import AnyEvent, decode
from shared.stream import Entry, StreamId
from tests.golden.generate import LOG, PROJECTION


def golden(run: str) -> list[Entry]:
    """The golden log under order ids of this run's own (event ids follow them)."""
    entries = []
    for n, line in enumerate(LOG.read_bytes().splitlines()):
        raw = json.loads(line)
        raw["orderId"] = f"{run}-{raw['orderId']}"
        del raw["id"]
        entries.append(Entry(StreamId(1_700_000_000_000 + n, 0), decode(json.dumps(raw))))
    return entries


def expected(run: str) -> dict[str, dict[str, Any]]:
    rows = json.loads(PROJECTION.read_text())
    return {f"{run}-{order_id}": row | {"order_id": f"{run}-{order_id}"}
            for order_id, row in rows.items()}


async def stored(db: psycopg.AsyncConnection[object], run: str,
                 columns: list[str]) -> dict[str, dict[str, Any]]:
    cursor = await db.execute(
        f"SELECT {', '.join(columns)} FROM orders WHERE order_id LIKE %s", (f"{run}-%",))
    rows = {}
    values: Any
    for values in await cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        for name, value in row.items():
            if isinstance(value, Decimal):
                row[name] = int(value)
        rows[row["order_id"]] = msgspec.to_builtins(row)
    return rows


@pytest.mark.parametrize("seed", range(6))
async def test_batches_in_any_order_and_redelivered_give_the_folded_rows(
    db: psycopg.AsyncConnection[object], seed: int,
) -> None:
    run = uuid.uuid4().hex[:8]
    entries = golden(run)
    rng = random.Random(seed)
    batches: list[list[Entry]] = []
    while len(batches) < 12:
        cut = sorted(rng.sample(range(1, len(entries)), 8))
        shuffled = entries[:]
        rng.shuffle(shuffled)
        batches += [shuffled[a:b] for a, b in zip([0, *cut], [*cut, len(entries)], strict=True)]
    rng.shuffle(batches)
    async with await psycopg.AsyncConnection.connect(db.info.dsn) as conn:
        for batch in batches:
            await record(conn, batch)
        await record(conn, entries)  # and every event once more, in one batch
    want = expected(run)
    columns = list(next(iter(want.values())))
    assert await stored(db, run, columns) == want


async def test_a_route_redelivered_after_the_reroute_leaves_the_new_route(
    db: psycopg.AsyncConnection[object],
) -> None:
    run = uuid.uuid4().hex[:8]
    entries = [e for e in golden(run) if e.event.order_id.endswith("slippage-reroute")]
    routed, rerouted = (e for e in entries if e.event.type in ("Routed", "Rerouted"))
    submitted = next(e for e in entries if e.event.type == "Submitted")
    async with await psycopg.AsyncConnection.connect(db.info.dsn) as conn:
        await record(conn, entries)
        await record(conn, [routed, submitted])  # a late redelivery of older facts
    want = expected(run)
    columns = ["order_id", "routed_dex", "quoted_out", "min_amount_out", "route_seq", "tx_hash",
               "status"]
    [(order_id, row)] = (await stored(db, run, columns)).items()
    new_route: AnyEvent = rerouted.event
    assert row["routed_dex"] == new_route.dex != routed.event.dex  # type: ignore[union-attr]
    assert row == {c: want[order_id][c] for c in columns}
