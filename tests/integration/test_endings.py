"""How accepted orders ended, read from real PostgreSQL, Redis and the simulated chain: the
audit a load runs at its end (``services.cli.audit.accepted_endings``)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import psycopg

from services.cli.audit import accepted_endings
from services.persister.service import main as persister_main
from shared.config import Settings
from shared.events import OrderOpened
from shared.stream import EventStore
from tests.helpers import eventually, running
from tests.unit import builders


async def test_each_accepted_order_ended_once_waits_in_time_or_is_lost(
        store: EventStore, settings: Settings) -> None:
    confirmed, waits, late, never = (str(uuid.uuid4()) for _ in range(4))
    soon, gone = time.time() + 60, time.time() - 60

    def waiting(order_id: str, deadline: float) -> list[object]:
        at = datetime.fromtimestamp(deadline, UTC)
        return [builders.requested(order_id, order_type="limit", limit_price="150",
                                   expires_at=at),
                OrderOpened(order_id=order_id, seq=2)]

    written = [*builders.happy_story(confirmed), *waiting(waits, soon), *waiting(late, gone)]
    assert all(await store.append(written))  # type: ignore[arg-type]
    async with running(persister_main, settings):
        async def projected() -> bool | None:
            async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
                cursor = await conn.execute(
                    "SELECT count(*) FROM orders WHERE order_id = ANY(%s)",
                    ([confirmed, waits, late],))
                row = await cursor.fetchone()
            return True if row == (3,) else None

        await eventually(projected, 20)
    ids, deadlines = [confirmed, waits, late, never], {waits: soon, late: gone}
    found = await accepted_endings(settings, ids, deadlines=deadlines, wait_s=0.2)
    assert found.ended == {"confirmed": 1}
    assert (found.accepted, found.still_open, found.lost) == (4, 1, 2)
    assert (found.duplicated, found.executed_twice) == (0, 0)
    assert sorted(v.order_id for v in found.violations) == sorted([late, never])
    assert not found.ok
    # A second end, as a tampered log would hold one: PostgreSQL's count of it is read.
    async with await psycopg.AsyncConnection.connect(settings.database_url,
                                                     autocommit=True) as conn:
        await conn.execute(
            "INSERT INTO events (order_id, seq, event_id, type, at, stream_ms, stream_seq,"
            " data) SELECT order_id, seq + 1, gen_random_uuid(), type, at, stream_ms,"
            " stream_seq + 1, data FROM events WHERE order_id = %s AND type = 'Confirmed'",
            (confirmed,))
    found = await accepted_endings(settings, ids, deadlines=deadlines, wait_s=0)
    assert found.duplicated == 1
    assert [v.detail for v in found.violations if v.order_id == confirmed] == [
        "2 terminal events in PostgreSQL, 1 in the log"]
