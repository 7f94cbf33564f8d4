"""Router, executor and persister, each running its real loop against real Redis and
PostgreSQL (in this process; the end-to-end tests run them as processes)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import msgspec
import psycopg
import pytest

from services.executor.chain import SimulatedChain
from services.executor.service import main as executor_main
from services.persister.records import record
from services.persister.service import main as persister_main
from services.router.service import main as router_main
from shared.config import Settings
from shared.events import (
    AttemptFailed,
    Built,
    Confirmed,
    Failed,
    OrderRequested,
    Rerouted,
    Routed,
    Submitted,
    now,
)
from shared.stream import Entry, EventStore, StreamId
from tests.helpers import eventually, order, route_now, running, stories


def new_id() -> str:
    return str(uuid.uuid4())


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def routed(requested: OrderRequested, settings: Settings, **changes: Any) -> Routed:
    """The route the router would choose now, as its Routed event (seq 2)."""
    routed = route_now(requested, settings)
    return msgspec.structs.replace(routed, **changes) if changes else routed


async def test_router_routes_each_order_to_the_best_net_output(
    store: EventStore, settings: Settings
) -> None:
    pairs = [("SOL", "USDC", 500_000_000), ("USDC", "SOL", 25_000_000),
             ("BONK", "RAY", 10**11), ("SOL", "USDC", 40_000 * 10**9)]
    orders = [order(new_id(), a, b, amount) for a, b, amount in pairs]
    async with running(router_main, settings):
        await store.append(orders)
        found = await _routed(store, [o.order_id for o in orders])
    by_order = {e.order_id: e for e in found}
    for requested in orders:
        event = by_order[requested.order_id]
        assert [q.dex for q in event.quotes] == ["raydium", "meteora"]
        assert event.route == event.candidates[0]
        assert all(event.amount_out >= c.amount_out for c in event.candidates)
        assert event.amount_out == event.route.amount_out
        assert event.min_amount_out == -(-event.amount_out * 99 // 100)
        assert event.reason and event.dex == event.route.venues
    assert by_order[orders[2].order_id].route.kind == "two_hop"  # no BONK/RAY pool
    assert by_order[orders[3].order_id].route.kind == "split"  # too big for one pool


async def _routed(store: EventStore, order_ids: list[str]) -> list[Routed]:
    async def all_routed() -> list[Routed] | None:
        found = []
        for order_id in order_ids:
            history = await store.history(order_id)
            found += [e for e in history if isinstance(e, Routed)]
        return found if len(found) == len(order_ids) else None

    return await eventually(all_routed, 20)


async def test_executor_builds_submits_and_confirms(
    store: EventStore, settings: Settings
) -> None:
    sol_in, sol_out = order(new_id()), order(new_id(), "USDC", "SOL", 75_000_000)
    async with running(executor_main, settings):
        await store.append([sol_in, routed(sol_in, settings), sol_out, routed(sol_out, settings)])
        found = await stories(store, [sol_in.order_id, sol_out.order_id])
    for requested in (sol_in, sol_out):
        story = found[requested.order_id]
        assert types(story) == ["OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]
        built, submitted, confirmed = story[2], story[3], story[4]
        assert isinstance(built, Built) and isinstance(submitted, Submitted)
        assert isinstance(confirmed, Confirmed)
        assert confirmed.tx_hash == submitted.tx_hash and len(submitted.tx_hash) in (87, 88)
        assert confirmed.amount_out >= confirmed.min_amount_out
    assert found[sol_in.order_id][2].wraps_sol  # type: ignore[union-attr]
    assert found[sol_out.order_id][2].unwraps_sol  # type: ignore[union-attr]


async def test_executor_gives_up_after_three_attempts(
    store: EventStore, settings: Settings
) -> None:
    settings = msgspec.structs.replace(settings, failure_rate=1.0)
    requested = order(new_id())
    async with running(executor_main, settings):
        await store.append([requested, routed(requested, settings)])
        story = (await stories(store, [requested.order_id]))[requested.order_id]
    assert types(story) == ["OrderRequested", "Routed", "Built", "AttemptFailed",
                            "AttemptFailed", "AttemptFailed", "Failed"]
    attempts = [e for e in story if isinstance(e, AttemptFailed)]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.retry_in_ms for a in attempts] == [20, 40, None]  # exponential, then none
    assert all(a.error for a in attempts)
    failed = story[-1]
    assert isinstance(failed, Failed) and failed.attempts == 3


async def test_a_slippage_failure_is_routed_again_and_counts_as_an_attempt(
    store: EventStore, settings: Settings
) -> None:
    requested = order(new_id())
    # A route whose bound no fill can meet: the chain refuses it with a slippage error.
    impossible = routed(requested, settings)
    impossible = msgspec.structs.replace(impossible, min_amount_out=impossible.amount_out * 2)
    async with running(executor_main, settings), running(router_main, settings):
        await store.append([requested, impossible])
        story = (await stories(store, [requested.order_id]))[requested.order_id]
    assert types(story) == ["OrderRequested", "Routed", "Built", "AttemptFailed", "Rerouted",
                            "Submitted", "Confirmed"]
    failed, rerouted, confirmed = story[3], story[4], story[6]
    assert isinstance(failed, AttemptFailed) and failed.kind == "slippage" and failed.reroute
    assert failed.error.startswith("SlippageExceeded")
    assert isinstance(rerouted, Rerouted) and isinstance(confirmed, Confirmed)
    assert confirmed.attempt == 2 and confirmed.amount_out >= rerouted.min_amount_out


async def test_slippage_on_the_last_attempt_fails_the_order(
    store: EventStore, settings: Settings
) -> None:
    settings = msgspec.structs.replace(settings, max_attempts=1)
    requested = order(new_id())
    impossible = routed(requested, settings)
    impossible = msgspec.structs.replace(impossible, min_amount_out=impossible.amount_out + 10**9)
    async with running(executor_main, settings):
        await store.append([requested, impossible])
        story = (await stories(store, [requested.order_id]))[requested.order_id]
    assert types(story)[-2:] == ["AttemptFailed", "Failed"]
    failed = story[-1]
    assert isinstance(failed, Failed) and failed.reason == "slippage_exceeded"


async def test_an_expired_quote_is_not_executed_but_routed_again(
    store: EventStore, settings: Settings
) -> None:
    requested = order(new_id())
    stale = routed(requested, settings, at=now() - timedelta(minutes=5))
    async with running(executor_main, settings), running(router_main, settings):
        await store.append([requested, stale])
        story = (await stories(store, [requested.order_id]))[requested.order_id]
    assert types(story) == ["OrderRequested", "Routed", "Built", "AttemptFailed", "Rerouted",
                            "Submitted", "Confirmed"]
    assert story[3].kind == "expired"  # type: ignore[union-attr]
    assert story[3].error.startswith("QuoteExpired")  # type: ignore[union-attr]


async def test_executor_runs_at_most_its_concurrency(store: EventStore, settings: Settings) -> None:
    settings = msgspec.structs.replace(settings, executor_concurrency=3)
    orders = [order(new_id()) for _ in range(9)]
    async with running(executor_main, settings):
        await store.append([e for o in orders for e in (o, routed(o, settings))])
        found = await stories(store, [o.order_id for o in orders])
    assert max_overlap(found.values()) == 3


def max_overlap(stories: Any) -> int:
    """How many orders were between Built and their terminal event at the same moment."""
    edges = []
    for story in stories:
        built = next(e for e in story if isinstance(e, Built))
        edges += [(built.at, 1), (story[-1].at, -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize("recorded", [True, False], ids=["submitted", "landed-unrecorded"])
async def test_an_executor_taking_over_converges_on_what_already_landed(
    store: EventStore, settings: Settings, recorded: bool
) -> None:
    """A crash after the transaction landed, with or without its Submitted event: the next
    executor confirms that transaction and never executes the swap again."""
    requested = order(new_id())
    chain = SimulatedChain(store.redis, settings)
    [landing] = await chain.land(await chain.send(requested, routed(requested, settings),
                                                  attempt=1))
    history: list[Any] = [requested, routed(requested, settings), Built(
        order_id=requested.order_id, seq=3, dex="meteora", instructions=[],
        wraps_sol=True, unwraps_sol=False)]
    if recorded:
        history.append(Submitted(order_id=requested.order_id, seq=4,
                                 tx_hash=landing.signature, attempt=1))
    await store.append(history)
    async with running(executor_main, settings):
        story = (await stories(store, [requested.order_id]))[requested.order_id]
    assert types(story) == ["OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]
    assert story[-1].tx_hash == landing.signature  # type: ignore[union-attr]
    assert await chain.executions([requested.order_id]) == {requested.order_id: 1}
    ttl = await store.redis.ttl(chain.ledger_key(requested.order_id, 1))
    assert 0 < ttl <= settings.finished_order_ttl_s  # settled with the order


async def test_persister_projects_every_event(
    store: EventStore, settings: Settings, db: psycopg.AsyncConnection[object]
) -> None:
    orders = [order(new_id()) for _ in range(5)]
    async with running(persister_main, settings), running(router_main, settings), \
            running(executor_main, settings):
        await store.append(orders)
        found = await stories(store, [o.order_id for o in orders])

        async def projected() -> bool | None:
            cursor = await db.execute(
                "SELECT count(*) FROM orders WHERE order_id = ANY(%s) AND status = 'confirmed'",
                ([o.order_id for o in orders],),
            )
            row = await cursor.fetchone()
            return True if row and row[0] == 5 else None

        await eventually(projected, 20)

        async def index_expiring() -> bool | None:
            ttls = [await store.redis.ttl(store.order_key(o.order_id)) for o in orders]
            return True if all(0 < t <= settings.finished_order_ttl_s for t in ttls) else None

        await eventually(index_expiring, 10)  # PostgreSQL has them: Redis may let go
    cursor = await db.execute(
        "SELECT order_id, array_agg(type ORDER BY seq) FROM events"
        " WHERE order_id = ANY(%s) GROUP BY order_id", ([o.order_id for o in orders],))
    rows = await cursor.fetchall()
    assert [r[1] for r in rows] == [
        ["OrderRequested", "Routed", "Built", "Submitted", "Confirmed"]] * 5
    cursor = await db.execute(
        "SELECT token_in, token_out, amount_in, routed_dex, tx_hash, amount_out, last_seq"
        " FROM orders WHERE order_id = %s", (orders[0].order_id,))
    row = await cursor.fetchone()
    first_routed, *_, confirmed = found[orders[0].order_id][1:]
    assert isinstance(first_routed, Routed) and isinstance(confirmed, Confirmed)
    assert row == ("SOL", "USDC", 500_000_000, first_routed.dex, confirmed.tx_hash,
                   confirmed.amount_out, 5)


@pytest.fixture
async def failed_story(store: EventStore, settings: Settings) -> list[Entry]:
    settings = msgspec.structs.replace(settings, failure_rate=1.0)
    requested = order(new_id())
    async with running(executor_main, settings):
        await store.append([requested, routed(requested, settings)])
        await stories(store, [requested.order_id])
    return [e async for e in store.everything_after()
            if e.event.order_id == requested.order_id]


async def test_recording_twice_or_out_of_order_changes_nothing(
    failed_story: list[Entry], db: psycopg.AsyncConnection[object]
) -> None:
    order_id = failed_story[0].event.order_id
    async with await psycopg.AsyncConnection.connect(db.info.dsn) as conn:
        await record(conn, failed_story[4:])  # the later half first, as a second persister might
        await record(conn, failed_story)
        await record(conn, failed_story)
    cursor = await db.execute("SELECT count(*) FROM events WHERE order_id = %s", (order_id,))
    assert (await cursor.fetchone()) == (len(failed_story),)
    cursor = await db.execute(
        "SELECT status, failed_attempts, error, token_in FROM orders WHERE order_id = %s",
        (order_id,))
    status, attempts, error, token_in = await cursor.fetchone()  # type: ignore[misc]
    assert (status, attempts, token_in) == ("failed", 3, "SOL")
    assert "failed after 3 attempts" in error
    cursor = await db.execute(
        "SELECT data->>'attempt', data->>'error' FROM events"
        " WHERE order_id = %s AND type = 'AttemptFailed' ORDER BY seq", (order_id,))
    errors = await cursor.fetchall()
    assert [a for a, _ in errors] == ["1", "2", "3"] and all(e for _, e in errors)


async def test_a_batch_of_many_orders_is_recorded_with_exact_amounts(
    db: psycopg.AsyncConnection[object],
) -> None:
    from tests.unit import builders

    huge = 10**25  # beyond bigint: amounts are numeric and stay exact
    ids = [new_id() for _ in range(3)]
    events: list[Any] = [builders.requested(ids[0], amount_in=huge), *builders.happy_story(ids[1]),
                         builders.submitted(ids[2], seq=4)]
    batch = [Entry(StreamId(1_700_000_000_000, n), e) for n, e in enumerate(events)]
    async with await psycopg.AsyncConnection.connect(db.info.dsn) as conn:
        await record(conn, batch)
        await record(conn, [])
    cursor = await db.execute(
        "SELECT order_id, status, amount_in, tx_hash FROM orders WHERE order_id = ANY(%s)"
        " ORDER BY order_id", (ids,))
    rows = {row[0]: row[1:] for row in await cursor.fetchall()}
    assert rows[ids[0]][:2] == ("pending", huge)
    assert rows[ids[1]] == ("confirmed", 500_000_000, builders.TX)
    assert rows[ids[2]] == ("submitted", None, builders.submitted().tx_hash)
    cursor = await db.execute("SELECT count(*) FROM events WHERE order_id = ANY(%s)", (ids,))
    assert await cursor.fetchone() == (len(events),)
