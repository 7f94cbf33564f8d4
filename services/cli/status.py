"""``oee status``: what an operator looks at first. Every consumer group with its consumers,
what each has pending, how far it lags and what it dead-lettered; Redis's memory; and how
far PostgreSQL is behind the log."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from typing import Any

import msgspec
import psycopg
from redis.exceptions import RedisError, ResponseError

from services.cli.settings import hide_password
from shared.config import Settings
from shared.queues import QUEUED_GROUPS
from shared.stream import EventStore, StreamId

# The group whose progress is PostgreSQL's.
PERSISTER = "persister"
# Dead letters are read in pages of this many; there should be few.
_PAGE = 1000


class Consumer(msgspec.Struct):
    name: str
    pending: int
    idle_s: float


class Group(msgspec.Struct):
    name: str
    stream: str
    consumers: list[Consumer]
    # Delivered, not yet acknowledged.
    pending: int
    # Not yet delivered; None where Redis cannot tell (after entries were deleted).
    lag: int | None
    dead_letters: int


class Postgres(msgspec.Struct):
    # The newest log entry PostgreSQL holds, and how much older it is than the log's newest.
    newest: str | None
    behind_s: float | None
    # The persister group's unfinished entries: what PostgreSQL has still to record.
    persister_backlog: int | None
    error: str | None = None


class Report(msgspec.Struct):
    namespace: str
    log_newest: str | None
    groups: list[Group]
    dead_letters: int
    redis_used_memory: int
    redis_used_memory_peak: int
    postgres: Postgres


async def _groups(store: EventStore, dead: Counter[str]) -> list[Group]:
    """Each group summed over the partitions of its stream; a consumer's pending summed,
    its idle time the shortest."""
    groups: dict[str, Group] = {}
    names = ["persister", *sorted(QUEUED_GROUPS)]
    streams = {name: store.group_streams(name) for name in names}
    for name, keys in streams.items():
        for stream in keys:
            try:
                infos: Any = await store.redis.xinfo_groups(stream)
            except ResponseError:  # no such stream yet
                continue
            for info in infos:
                group_name = _text(info["name"])
                if group_name in QUEUED_GROUPS and group_name != name:
                    continue
                members: Any = await store.redis.xinfo_consumers(stream, group_name)
                lag = info.get("lag")
                group = groups.setdefault(group_name, Group(
                    group_name, _pattern(store, stream), [], 0, 0, dead[group_name]))
                group.pending += int(info["pending"])
                group.lag = None if lag is None or group.lag is None else group.lag + int(lag)
                for m in members:
                    _merge(group, Consumer(_text(m["name"]), int(m["pending"]),
                                           int(m["idle"]) / 1000))
    return sorted(groups.values(), key=lambda g: g.name)


def _pattern(store: EventStore, stream: str) -> str:
    """A partition's stream named for all of them: ``ns:{*}:queue:router``."""
    first = store.layout.key(0, "")
    for partition in store.partitions:
        prefix = store.layout.key(partition, "")
        if stream.startswith(prefix):
            return f"{first.split(':{', 1)[0]}:{{*}}:{stream[len(prefix):]}"
    return stream


def _merge(group: Group, consumer: Consumer) -> None:
    for known in group.consumers:
        if known.name == consumer.name:
            known.pending += consumer.pending
            known.idle_s = min(known.idle_s, consumer.idle_s)
            return
    group.consumers.append(consumer)


async def _dead_letters(store: EventStore) -> Counter[str]:
    """How many entries each group dead-lettered."""
    counts: Counter[str] = Counter()
    async for fields in store.dead_letter_entries():
        counts[_text(fields.get(b"group", b"?"))] += 1
    return counts


async def _log_newest(store: EventStore) -> StreamId | None:
    try:
        newest = await store.last_id()
    except ResponseError:  # no log yet
        return None
    return newest if newest > StreamId(0, 0) else None


async def _postgres(database_url: str, log_newest: StreamId | None,
                    backlog: int | None) -> Postgres:
    try:
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True, connect_timeout=5
        ) as connection:
            cursor = await connection.execute(
                "SELECT stream_ms, stream_seq FROM events"
                " ORDER BY stream_ms DESC, stream_seq DESC LIMIT 1")
            row = await cursor.fetchone()
    except psycopg.Error as problem:
        return Postgres(None, None, backlog, error=str(problem).strip().splitlines()[0])
    newest = StreamId(int(row[0]), int(row[1])) if row else None
    behind: float | None = 0.0
    if backlog and log_newest is not None:
        # Nothing recorded yet: how far behind is unknown, not 56 years.
        behind = None if newest is None else max(0, log_newest.ms - newest.ms) / 1000
    return Postgres(None if newest is None else str(newest), behind, backlog)


async def gather(settings: Settings) -> Report:
    store = EventStore(settings)
    try:
        dead = await _dead_letters(store)
        groups = await _groups(store, dead)
        newest = await _log_newest(store)
        memory: Any = await store.redis.info("memory")
    finally:
        await store.close()
    persister = next((g for g in groups if g.name == PERSISTER), None)
    backlog = None if persister is None else persister.pending + (persister.lag or 0)
    return Report(
        namespace=settings.namespace,
        log_newest=None if newest is None else str(newest),
        groups=groups,
        dead_letters=sum(dead.values()),
        redis_used_memory=int(memory["used_memory"]),
        redis_used_memory_peak=int(memory["used_memory_peak"]),
        postgres=await _postgres(settings.database_url, newest, backlog),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _megabytes(count: int) -> str:
    return f"{count / 1_000_000:.1f} MB"


def render(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"Consumer groups ({report.namespace})", title_justify="left")
    for heading in ("group / consumer", "stream", "pending", "lag", "idle", "dead letters"):
        numeric = heading not in ("group / consumer", "stream")
        table.add_column(heading, justify="right" if numeric else "left")
    for group in report.groups:
        lag = "?" if group.lag is None else str(group.lag)
        table.add_row(f"[bold]{group.name}[/]", group.stream, str(group.pending), lag, "",
                      str(group.dead_letters))
        for consumer in group.consumers:
            table.add_row(f"  {consumer.name}", "", str(consumer.pending), "",
                          f"{consumer.idle_s:.1f} s", "")
    console.print(table)
    console.print(f"Dead letters: {report.dead_letters}")
    console.print(f"Redis memory: {_megabytes(report.redis_used_memory)} "
                  f"(peak {_megabytes(report.redis_used_memory_peak)})")
    pg = report.postgres
    if pg.error is not None:
        console.print(f"PostgreSQL: unreachable ({pg.error})")
        return
    backlog = "no persister group yet" if pg.persister_backlog is None else (
        f"persister backlog {pg.persister_backlog}")
    behind = "?" if pg.behind_s is None else f"{pg.behind_s:.1f}"
    console.print(f"PostgreSQL: {behind} s behind the log ({backlog}); newest "
                  f"recorded {pg.newest or 'none'}, log's newest {report.log_newest or 'none'}")


def run(settings: Settings, as_json: bool) -> int:
    """Exit 0 when Redis and PostgreSQL both answered; 1 otherwise (what could be read
    is still shown)."""
    try:
        report = asyncio.run(gather(settings))
    except (RedisError, OSError) as problem:
        where = hide_password(settings.redis_url)
        print(f"oee: cannot read Redis at {where}: {problem}", file=sys.stderr)
        return 1
    if as_json:
        print(msgspec.json.encode(report).decode())
    else:
        render(report)
    return 0 if report.postgres.error is None else 1
