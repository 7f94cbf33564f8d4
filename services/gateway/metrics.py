"""The gateway's /metrics: its own series, and what Redis holds for the whole engine at the
moment of the scrape: each consumer group's backlog, the dead letters, and how far
PostgreSQL is behind the log. Being Redis's facts, they outlive any process's restart, and
every gateway reports the same figures (the alert rules take their max)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import DEAD_LETTERS_HELD, GROUP_BACKLOG, POSTGRES_BEHIND, TAIL_EVENTS
from shared.positions import ORIGIN, StreamId
from shared.store_base import as_text
from shared.stream import EventStore

CONTENT_TYPE = CONTENT_TYPE_LATEST
# The group whose progress is PostgreSQL's: it acknowledges an entry once it is recorded.
PERSISTER = "persister"


class Readings(msgspec.Struct, frozen=True):
    # Per consumer group: entries pending or not yet read.
    backlog: dict[str, int]
    dead_letters: int
    postgres_behind_s: float


async def read(store: EventStore, now_s: float) -> Readings:
    """Four round trips at once, and a fifth only while the persister has read nothing
    of what is waiting for it."""
    backlog, dead, behind = await asyncio.gather(
        store.backlog(), store._each([store.dead_letters(p) for p in store.partitions], "xlen"),
        postgres_behind_s(store, now_s))
    return Readings(backlog, sum(dead), behind)


async def postgres_behind_s(store: EventStore, now_s: float) -> float:
    """The age of the oldest log entry the persister group has not acknowledged. Per
    partition that is its oldest pending entry, older than anything unread (a group reads
    in log order); with none pending, the first entry after the last one it read."""
    logs = store.group_streams(PERSISTER)
    infos, summaries = await asyncio.gather(
        store._each(logs, "xinfo_groups"),
        store._each_call("xpending", [{"name": s, "groupname": PERSISTER} for s in logs]))
    oldest: list[StreamId] = []
    unread_after: list[dict[str, Any]] = []
    for log, groups, summary in zip(logs, infos, summaries, strict=True):
        if not isinstance(summary, Exception) and summary["min"] is not None:
            oldest.append(StreamId.parse(summary["min"]))
            continue
        group = _persister(groups)
        if group is not None and group.get("lag") == 0:
            continue  # recorded up to the log's end
        # A persister that never started has read nothing.
        last = ORIGIN if group is None else StreamId.parse(group["last-delivered-id"])
        unread_after.append({"name": log, "min": f"({last}", "max": "+", "count": 1})
    for entries in await store._each_call("xrange", unread_after):
        oldest += [StreamId.parse(entry_id) for entry_id, _ in entries]
    if not oldest:
        return 0.0
    return max(0.0, now_s - min(oldest).ms / 1000)


def _persister(groups: Any) -> dict[str, Any] | None:
    if isinstance(groups, Exception):  # no such stream yet
        return None
    return next((g for g in groups if as_text(g["name"]) == PERSISTER), None)


class Scrape:
    def __init__(self) -> None:
        self.tail_events_counted = 0

    def render(self, tail_events_seen: int, readings: Readings | None) -> bytes:
        """``readings``: None while Redis is away; the gauges keep what they last read."""
        TAIL_EVENTS.inc(tail_events_seen - self.tail_events_counted)
        self.tail_events_counted = tail_events_seen
        if readings is not None:
            for group, count in readings.backlog.items():
                GROUP_BACKLOG.labels(group).set(count)
            DEAD_LETTERS_HELD.set(readings.dead_letters)
            POSTGRES_BEHIND.set(readings.postgres_behind_s)
        return generate_latest()
