"""What /orders/stream resends after a reconnect: the log Redis holds, and PostgreSQL's
record of what Redis has trimmed, joined without a gap or a repeat in every partition."""

from __future__ import annotations

import time
import uuid

import psycopg

from services.gateway.feed import missed
from services.gateway.read_model import ReadModel
from services.persister.records import record
from shared.accounts import Account
from shared.events import AnyEvent
from shared.stream import Entry, EventStore, Positions, StreamId
from tests.unit import builders


async def test_missed_joins_postgres_and_redis_around_a_trim(
    store: EventStore, database_url: str
) -> None:
    # PostgreSQL holds other tests' events too: nothing from before this test is resent.
    floor = StreamId(int(time.time() * 1000) - 1, 0)
    stories: list[list[AnyEvent]] = []
    for index in range(12):
        order_id = str(uuid.uuid4())
        story = builders.happy_story(order_id)
        owner = "alice" if index % 2 == 0 else "bob"
        story[0] = builders.requested(order_id, account=owner)
        stories.append(story)
    for story in stories:
        await store.append(story)
    entries = [e async for e in store.everything_after()]
    assert len(entries) == 60
    parts = {p: [e for e in entries if e.partition == p] for p in store.partitions}
    # Per partition: the persister has recorded the first two thirds; Redis has trimmed
    # the first third; the client saw the first entry.
    recorded, kept, start = [], {}, []
    for partition, part in parts.items():
        recorded += part[: 2 * len(part) // 3]
        kept[partition] = part[len(part) // 3:]
        start.append(part[0].id if part else floor)
        if part and len(part) // 3:
            await store.redis.xtrim(store.log_key(partition), minid=str(kept[partition][0].id),
                                    approximate=False)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await record(conn, recorded)
    after = Positions.of(start)
    alices = {story[0].order_id for story in stories[::2]}
    read_model = ReadModel(database_url)
    await read_model.open()
    try:
        operator = [e async for e in missed(store, read_model, Account("ops", "operator"), after)]
        assert _keyed(operator) == _keyed(
            [e for e in entries if e.id > after[e.partition]])
        alice = [e async for e in missed(store, read_model, Account("alice", "trader"), after)]
        # PostgreSQL's part is filtered there; Redis' part is filtered by the follower.
        expected = []
        for partition, part in parts.items():
            trimmed = part[: len(part) - len(kept[partition])]
            expected += [e for e in trimmed[1:] if e.event.order_id in alices]
            expected += kept[partition]
        assert _keyed(alice) == _keyed(expected)
        heads = Positions.of(max(h, floor) for h in (await store.heads()).ids)
        assert [e async for e in missed(store, read_model, Account("ops", "operator"),
                                        heads)] == []
    finally:
        await read_model.close()


def _keyed(entries: list[Entry]) -> list[tuple[int, StreamId, str, int]]:
    """Partition by partition, in log order."""
    return sorted((e.partition, e.id, e.event.order_id, e.event.seq) for e in entries)
