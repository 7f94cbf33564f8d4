"""The append script reads each event's move from the event itself: the same move as
``Event.move`` says in Python, and nothing a caller passes can make it another one."""

from __future__ import annotations

import json
import uuid
from datetime import UTC
from pathlib import Path
from typing import Any, get_args

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from shared import lifecycle
from shared.appending import APPEND_SCRIPT, MOVE_OF, OPEN_ORDER_TTL_S, script
from shared.events import (
    EVENT_TYPES,
    ORDER_TYPES,
    AttemptFailed,
    Confirmed,
    Event,
    OrderRequested,
    Rerouted,
    Routed,
    Triggered,
    decode,
    encode,
)
from shared.queues import QUEUES
from shared.route import Candidate
from shared.stream import EventStore
from tests.helpers import order, route_now

GOLDEN = Path(__file__).parents[1] / "golden" / "events.jsonl"

# The script's own reading of an event, alone: each JSON's move, '' where it has none.
MOVES = script(MOVE_OF + """
local moves = {}
for i, data in ipairs(ARGV) do
  local kind = type_of(data)
  moves[i] = kind and move_of(kind, data) or ''
end
return moves
""")

DETERMINISTIC = settings(derandomize=True, max_examples=40, deadline=None, database=None)


@pytest.fixture
def client(single_redis_url: str) -> redis.Redis:
    # The script touches no key, and reads the same on a cluster's nodes.
    return redis.Redis.from_url(single_redis_url)


def moves_in_lua(client: redis.Redis, documents: list[bytes]) -> list[str]:
    replies: Any = client.eval(MOVES, 0, *documents)
    return [reply.decode() for reply in replies]


def test_the_script_reads_the_move_of_every_golden_event_as_python_does(
    client: redis.Redis,
) -> None:
    lines = GOLDEN.read_bytes().splitlines()
    events = [decode(line) for line in lines]
    expected = [event.move for event in events]
    # Every move the golden log has; as written then, and as the store writes it now.
    assert {"OrderRequested:waiting", "Triggered:routed", "AttemptFailed:reroute",
            "AttemptFailed:retry"} <= set(expected)
    assert moves_in_lua(client, lines) == expected
    assert moves_in_lua(client, [encode(event) for event in events]) == expected


def events_of(kind: type[Event]) -> st.SearchStrategy[Event]:
    """Events of one type, with the fields that decide a move drawn from all they take
    (and a route's runners-up kept few, which only slow the drawing)."""
    fields: dict[type[Event], dict[str, st.SearchStrategy[Any]]] = {
        OrderRequested: {"order_type": st.sampled_from(ORDER_TYPES)},
        Triggered: {"fill": st.one_of(st.just(UNSET), st.from_type(Candidate))},
        AttemptFailed: {"kind": st.sampled_from(get_args(lifecycle.FailureKind))},
        Routed: {"candidates": st.lists(st.from_type(Candidate), max_size=1)},
        Rerouted: {"candidates": st.lists(st.from_type(Candidate), max_size=1)},
    }
    return st.builds(kind, order_id=st.text(min_size=1, max_size=40),
                     seq=st.integers(1, 10**9), at=st.datetimes(timezones=st.just(UTC)),
                     **fields.get(kind, {}))


@pytest.mark.parametrize("kind", EVENT_TYPES, ids=lambda k: k.__name__)
def test_the_script_reads_the_move_of_any_event_as_python_does(
    client: redis.Redis, kind: type[Event],
) -> None:
    @DETERMINISTIC
    @given(st.lists(events_of(kind), min_size=1, max_size=3))
    def agrees(events: list[Event]) -> None:
        assert moves_in_lua(client, [encode(e) for e in events]) == [e.move for e in events]

    agrees()


def test_what_is_not_an_event_has_no_move(client: redis.Redis) -> None:
    requested = encode(order("o-1"))
    assert moves_in_lua(client, [
        b"", b"[]", b'{"orderId":"o-1","type":"Routed"}',  # the tag leads every event
        b'{"type":"OrderRequested",', b'{"type":"AttemptFailed","kind":"transient"}',
        requested,
    ]) == ["", "", "", "", "", "OrderRequested"]


def raw_call(store: EventStore, events: list[tuple[int, str, bytes]]
             ) -> tuple[list[str], list[Any]]:
    """The append script's KEYS and ARGV for (seq, order id, JSON), as any caller may
    write them."""
    partition = store.partition_of(events[0][1])
    keys = [store.log_key(partition), *(store.queue_key(q, partition) for q in QUEUES)]
    args: list[Any] = [OPEN_ORDER_TTL_S]
    for seq, order_id, data in events:
        keys.append(store.order_key(order_id))
        args += [seq, order_id, data]
    return keys, args


async def test_a_raw_call_cannot_append_a_move_the_orders_state_does_not_allow(
    store: EventStore,
) -> None:
    order_id = str(uuid.uuid4())
    requested = order(order_id)
    [requested_at] = await store.append([requested])
    key = store.order_key(order_id)
    partition = store.partition_of(order_id)
    confirmed = Confirmed(order_id=order_id, seq=2, tx_hash="x", attempt=1, dex="raydium",
                          amount_in=1, amount_out=2, min_amount_out=2, executed_price=2.0)
    keys, args = raw_call(store, [(2, order_id, encode(confirmed))])
    # A pending order is not confirmed before it is routed, whatever the caller says.
    assert await store.redis.eval(APPEND_SCRIPT, len(keys), *keys, *args) == [None]
    assert await store.redis.hget(key, "st") == b"pending"
    assert await store.redis.hget(key, "2") is None
    assert [e.id for e in await store.read_partition(partition, requested_at, 10)] == []  # type: ignore[arg-type]

    routed = route_now(requested, store.settings)
    keys, args = raw_call(store, [(2, order_id, encode(routed))])
    [routed_at] = await store.redis.eval(APPEND_SCRIPT, len(keys), *keys, *args)
    assert routed_at
    # Its state and its queue follow from the event: the executor's turn.
    assert await store.redis.hget(key, "st") == b"routing"
    executor = await store.redis.xrange(store.queue_key("executor", partition))
    assert [json.loads(fields[b"d"])["type"] for _, fields in executor] == ["Routed"]


async def test_a_waiting_order_goes_to_the_trigger_by_its_own_json(store: EventStore) -> None:
    """The one type whose move its JSON decides on the hot path: where it goes and the state
    it lands on come from ``orderType``."""
    limit = OrderRequested(order_id=str(uuid.uuid4()), seq=1, token_in="SOL", token_out="USDC",
                           amount_in=10**9, amount="1", slippage=0.01, order_type="limit",
                           limit_price="150")
    keys, args = raw_call(store, [(1, limit.order_id, encode(limit))])
    assert all(await store.redis.eval(APPEND_SCRIPT, len(keys), *keys, *args))
    assert await store.redis.hget(store.order_key(limit.order_id), "st") == b"opening"
    partition = store.partition_of(limit.order_id)
    assert await store.redis.xlen(store.queue_key("trigger", partition)) == 1
    assert await store.redis.xlen(store.queue_key("router", partition)) == 0
