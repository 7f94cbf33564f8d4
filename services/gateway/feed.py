"""/orders/stream: every status of every order an account may see, each order's in log
order, each with the follower's place in the log, so a client that reconnects resumes where
it left off.

The log is split into partitions, so a place in it is a vector: the last id the follower
was sent from each partition, handed to the client as an opaque token (``Positions``).
A follower registers with the tail first, waits until the tail is reading (``Tail.ready``),
and reads what it missed last, partition by partition: the events that PostgreSQL recorded
after its position there, then the log that Redis still holds after those. The tail
delivers everything after its own positions, which that read reaches; the vector drops the
overlap. So a client that reconnects with the last position it saw gets every status it
missed, once, and then the live ones, with no gap.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator

import msgspec

from services.gateway.read_model import ReadModel
from services.gateway.subscriptions import History, Tail
from services.gateway.views import Statuses, StatusMessage
from shared.accounts import Account
from shared.events import AnyEvent, OrderRequested
from shared.stream import Entry, EventStore, Positions

_PAGE = 1000


class Owners:
    """Which account each order belongs to: learned from the OrderRequested events that pass
    by, and looked up once for orders that began before. Shared by a gateway's followers."""

    def __init__(self, history: History, size: int = 100_000) -> None:
        self.history = history
        self.size = size
        self.known: OrderedDict[str, str] = OrderedDict()

    def learn(self, event: AnyEvent) -> None:
        if isinstance(event, OrderRequested):
            self._remember(event.order_id, event.account)

    async def of(self, order_id: str) -> str | None:
        if (owner := self.known.get(order_id)) is not None:
            return owner
        requested = [e for e in await self.history(order_id) if isinstance(e, OrderRequested)]
        if not requested:
            return None
        self._remember(order_id, requested[0].account)
        return requested[0].account

    def _remember(self, order_id: str, account: str) -> None:
        self.known[order_id] = account
        if len(self.known) > self.size:
            self.known.popitem(last=False)


class Follower:
    """One client's view: the orders it may see, and what each one's statuses told so far."""

    def __init__(self, account: Account, owners: Owners, history: History) -> None:
        self.account, self.owners, self.history = account, owners, history
        self.states: dict[str, Statuses] = {}

    async def message(self, entry: Entry, position: Positions) -> StatusMessage | None:
        event = entry.event
        self.owners.learn(event)
        if (not self.account.is_operator
                and await self.owners.of(event.order_id) != self.account.name):
            return None
        statuses = self.states.get(event.order_id)
        if statuses is None or statuses.last_seq + 1 != event.seq:
            # Began before this client's position: what its history told so far.
            statuses = Statuses.of(
                [e for e in await self.history(event.order_id) if e.seq < event.seq])
        message = statuses.message(event)
        if event.is_terminal:
            self.states.pop(event.order_id, None)
        else:
            self.states[event.order_id] = statuses
        if message is None:
            return None
        return msgspec.structs.replace(message, position=position.token())


async def follow_all(tail: Tail, store: EventStore, read_model: ReadModel,
                     follower: Follower, after: Positions | None,
                     ) -> AsyncIterator[StatusMessage]:
    """Statuses after ``after`` (from now, when None), then live ones, for ever."""
    count = len(store.partitions)
    mailbox = tail.subscribe_all()
    try:
        await tail.ready()
        last = list((after or Positions.origin(count)).ids)
        if after is not None:
            async for entry in missed(store, read_model, follower.account, after):
                if entry.id > last[entry.partition]:
                    last[entry.partition] = entry.id
                    message = await follower.message(entry, Positions(tuple(last)))
                    if message is not None:
                        yield message
        while True:
            for entry in await mailbox.take():
                if entry.id > last[entry.partition]:
                    last[entry.partition] = entry.id
                    if (message := await follower.message(entry, Positions(tuple(last)))):
                        yield message
    finally:
        tail.unsubscribe_all(mailbox)


async def missed(store: EventStore, read_model: ReadModel, account: Account,
                 after: Positions) -> AsyncIterator[Entry]:
    """What was appended after ``after``, partition by partition, each in log order, from
    the log Redis holds and, for what Redis has trimmed, from PostgreSQL: Redis trims only
    entries every group has acknowledged, the persister's included, so whatever lies before
    the first entry Redis returns is in PostgreSQL."""
    owner = None if account.is_operator else account.name
    for partition in store.partitions:
        position = after[partition]
        while True:
            held = await store.read_partition(partition, position, _PAGE)
            until = held[0].id if held else None
            while True:
                rows = await read_model.events_after(partition, position, owner, _PAGE, until)
                for position, event in rows:
                    yield Entry(position, event, partition)
                if len(rows) < _PAGE:
                    break
            for entry in held:
                position = entry.id
                yield entry
            if len(held) < _PAGE:
                break
