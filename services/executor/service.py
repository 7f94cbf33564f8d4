"""The executor: consume Routed, then build, submit and confirm the swap, appending each
step. Retries transient failures with exponential backoff, at most ``max_attempts``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime

from services.executor.chain import (
    Landing,
    QuoteExpired,
    SimulatedChain,
    SlippageExceeded,
    TransientError,
)
from services.executor.execution import backoff_ms, build
from shared import lifecycle
from shared.config import Settings
from shared.events import (
    AttemptFailed,
    Built,
    Confirmed,
    Event,
    Failed,
    OrderRequested,
    Routed,
    Submitted,
    now,
)
from shared.launches import Launches
from shared.lifecycle import FailureKind
from shared.metrics import ATTEMPTS, BUILD_SECONDS, CONFIRM_SECONDS, ORDER_SECONDS
from shared.order import OrderState, fold
from shared.stream import Entry, EventStore
from shared.tokens import find
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.executor")


# Looked up once: every confirmed order counts one.
_LANDED = ATTEMPTS.labels("landed")

class Superseded(Exception):
    """Another executor already wrote the next step of this order."""


class Execution:
    """One order's execution, resumed from whatever its history already says."""

    def __init__(self, store: EventStore, chain: SimulatedChain, settings: Settings,
                 state: OrderState, order: OrderRequested, routed: Routed) -> None:
        self.store, self.chain, self.settings = store, chain, settings
        self.state, self.order, self.routed = state, order, routed
        self.order_id = order.order_id
        self.submitted_at: datetime | None = None

    async def append(self, event: Event) -> None:
        [stream_id] = await self.store.append([event])
        if stream_id is None:
            raise Superseded(f"{event.type} #{event.seq}")
        self.state.apply(event)
        self.measure(event)

    def measure(self, event: Event) -> None:
        match event:
            case Built():
                BUILD_SECONDS.observe((event.at - self.routed.at).total_seconds())
            case Submitted():
                self.submitted_at = event.at
            case AttemptFailed():
                ATTEMPTS.labels(event.kind).inc()
            case Confirmed():
                _LANDED.inc()
                if self.submitted_at is not None:
                    CONFIRM_SECONDS.observe((event.at - self.submitted_at).total_seconds())
        if event.is_terminal and event.status is not None:
            ORDER_SECONDS.labels(event.status).observe((event.at - self.order.at).total_seconds())

    @property
    def next_seq(self) -> int:
        return self.state.last_seq + 1

    async def run(self) -> None:
        attempt = self.state.failed_attempts + 1
        landing = None
        if self.state.state == "giving_up" and self.state.last_failure is not None:
            # The last attempt failed and its executor stopped before writing the end.
            await self.give_up(self.state.last_failure)
            return
        if self.state.state == "routing":
            # Nothing can have been sent before Built is in: if another executor races us
            # to it, this append is dropped and we step aside.
            tx = build(self.order, self.routed)
            await self.append(Built(
                order_id=self.order_id, seq=self.next_seq, dex=self.routed.dex,
                instructions=tx.instructions, wraps_sol=tx.wraps_sol, unwraps_sol=tx.unwraps_sol,
            ))
        else:
            # Taking over (after a crash, or racing another executor): whatever already
            # landed is the result, and nothing is sent again.
            landing = await self.chain.find_landing(self.order_id, range(1, attempt + 1))
        if landing is None:
            landing = await self.submit_with_retries(attempt)
            if landing is None:
                return
        if self.state.tx_hash != landing.signature:
            await self.append(Submitted(
                order_id=self.order_id, seq=self.next_seq,
                tx_hash=landing.signature, attempt=landing.attempt,
            ))
        await self.finish(await self.chain.confirmation(landing))

    async def submit_with_retries(self, attempt: int) -> Landing | None:
        """Sends until one attempt lands; None when this executor is done with the order:
        it failed, or it needs a new route first (the router appends one, and an executor
        picks the order up again from there)."""
        while True:
            try:
                self.check_quote_age()
                return await self.chain.send(self.order, self.routed, attempt)
            except TransientError as error:
                if await self.attempt_failed(attempt, str(error), "transient"):
                    return None
                await asyncio.sleep(backoff_ms(attempt, self.settings.retry_base_ms) / 1000)
                attempt += 1
            except SlippageExceeded as error:
                await self.attempt_failed(attempt, str(error), "slippage")
                return None
            except QuoteExpired as error:
                await self.attempt_failed(attempt, str(error), "expired")
                return None

    def check_quote_age(self) -> None:
        age_ms = (now() - self.routed.at).total_seconds() * 1000
        if age_ms > self.settings.quote_max_age_ms:
            raise QuoteExpired(
                f"QuoteExpired: the route is {age_ms:.0f} ms old, "
                f"older than {self.settings.quote_max_age_ms:.0f} ms"
            )

    async def attempt_failed(self, attempt: int, error: str, kind: FailureKind) -> bool:
        """Records the failed attempt; returns whether it was the last (the order failed)."""
        move = lifecycle.after_failure(kind, attempt, self.settings.max_attempts,
                                       waiting=self.order.is_waiting)
        delay = backoff_ms(attempt, self.settings.retry_base_ms)
        log.warning("order %s attempt %d failed: %s", self.order_id, attempt, error)
        failure = AttemptFailed(
            order_id=self.order_id, seq=self.next_seq, attempt=attempt, error=error,
            retryable=move != "AttemptFailed:give_up",
            retry_in_ms=delay if move == "AttemptFailed:retry" else None, kind=kind,
        )
        await self.append(failure)
        if move == "AttemptFailed:give_up":
            await self.give_up(failure)
            return True
        return False

    async def give_up(self, last: AttemptFailed) -> None:
        await self.append(Failed(
            order_id=self.order_id, seq=self.next_seq, reason=lifecycle.FAIL_REASON[last.kind],
            error=f"failed after {last.attempt} attempts; last error: {last.error}",
            attempts=last.attempt,
        ))

    async def finish(self, landing: Landing) -> None:
        await self.append(Confirmed(
            order_id=self.order_id, seq=self.next_seq, tx_hash=landing.signature,
            attempt=landing.attempt, dex=self.routed.dex, amount_in=self.order.amount_in,
            amount_out=landing.amount_out, min_amount_out=self.routed.min_amount_out,
            executed_price=landing.executed_price, simulated_ms=landing.latency_ms,
        ))
        await self.chain.settle(landing)


async def execute(store: EventStore, chain: SimulatedChain, settings: Settings,
                  routed: Routed) -> None:
    state = fold(routed.order_id, await store.history(routed.order_id))
    # A redelivered route of an order that moved on (waiting for a new route, or ended) is
    # not the executor's to act on.
    if state.actor != "executor" or state.requested is None or state.routed is None:
        return
    try:
        await Execution(store, chain, settings, state, state.requested, state.routed).run()
    except Superseded as superseded:
        log.info("order %s is in other hands (%s already written)", routed.order_id, superseded)


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    chain = SimulatedChain(store.redis, settings)

    launches = Launches(store.redis, settings.namespace)

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            assert isinstance(entry.event, Routed)
            if any(find(token) is None for token in entry.event.route.path):
                await launches.catch_up()  # a token launched since this process looked
            await execute(store, chain, settings, entry.event)

    worker = Worker(
        store,
        worker_settings(
            settings, "executor", (Routed,),
            batch_size=settings.batch_size, chunk_size=1,
            concurrency=settings.executor_concurrency,
        ),
        handle,
    )
    try:
        await worker.run(stop)
    finally:
        await store.close()
