"""shared/db.py's migrations, on a real PostgreSQL: the audit log's keys."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import psycopg
import pytest

from shared.db import MIGRATIONS, migrate
from tests.infra import fresh_database


@pytest.fixture
def migrated(admin_database_url: str) -> Iterator[str]:
    with fresh_database(admin_database_url) as url:
        asyncio.run(migrate(url))
        yield url


def _indexes(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes"
                            " WHERE tablename = 'events'").fetchall()
    return {name: definition for name, definition in rows}


def test_the_log_is_keyed_by_order_and_seq_and_has_no_index_of_event_ids(migrated: str) -> None:
    indexes = _indexes(migrated)
    assert "UNIQUE INDEX events_pkey ON public.events USING btree (order_id, seq)" in (
        indexes["events_pkey"])
    # An event's id is uuid5 of its order and seq: the primary key keeps it unique.
    assert not [d for d in indexes.values() if "(event_id)" in d], indexes


def test_a_database_migrated_before_drops_the_index_of_event_ids(migrated: str) -> None:
    # The schema as the migrations before this one left it.
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (event_id)")
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (len(MIGRATIONS),))
    assert any("(event_id)" in d for d in _indexes(migrated).values())
    assert asyncio.run(migrate(migrated)) == 1
    assert not [d for d in _indexes(migrated).values() if "(event_id)" in d]
    assert asyncio.run(migrate(migrated)) == 0
