"""What /orders/stream resends after a reconnect: the log Redis holds, and PostgreSQL's
record of what Redis has trimmed, joined without a gap or a repeat."""

from __future__ import annotations

import uuid

import psycopg

from services.gateway.feed import missed
from services.gateway.queries import ReadModel
from services.persister.records import record
from shared.accounts import Account
from shared.events import AnyEvent
from shared.stream import EventStore, parse_entries
from tests.unit import builders


async def test_missed_joins_postgres_and_redis_around_a_trim(
    store: EventStore, database_url: str
) -> None:
    stories: list[list[AnyEvent]] = []
    for index in range(6):
        order_id = str(uuid.uuid4())
        story = builders.happy_story(order_id)
        owner = "alice" if index % 2 == 0 else "bob"
        story[0] = builders.requested(order_id, account=owner)
        stories.append(story)
    for story in stories:
        await store.append(story)
    entries = parse_entries(await store.redis.xrange(store.stream))
    assert len(entries) == 30
    # The persister has recorded the first 20 entries; Redis has trimmed the first 12.
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await record(conn, entries[:20])
    await store.redis.xtrim(store.stream, minid=str(entries[12].id))
    read_model = ReadModel(database_url)
    try:
        start = entries[3].id
        operator = [e async for e in missed(store, read_model, Account("ops", "operator"), start)]
        assert [e.id for e in operator] == [e.id for e in entries[4:]]
        alice = [e async for e in missed(store, read_model, Account("alice", "trader"), start)]
        # PostgreSQL's part is filtered there; Redis' part is filtered by the follower.
        alices = {story[0].order_id for story in stories[::2]}
        recorded = [e.id for e in entries[4:12] if e.event.order_id in alices]
        assert recorded == [entries[4].id, entries[10].id, entries[11].id]
        assert [e.id for e in alice] == recorded + [e.id for e in entries[12:]]
        assert [e async for e in missed(store, read_model, Account("ops", "operator"),
                                        entries[-1].id)] == []
    finally:
        await read_model.close()
