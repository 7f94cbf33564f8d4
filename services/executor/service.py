"""The executor: consume Routed, then build, submit and confirm the swap, appending each
step. Retries transient failures with exponential backoff, at most ``max_attempts``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from services.executor.chain import Landing, SimulatedChain, TransientError
from services.executor.execution import backoff_ms, build
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
)
from shared.order import OrderState, fold
from shared.stream import Entry, EventStore
from shared.worker import Worker, worker_settings

log = logging.getLogger("oee.executor")


class Superseded(Exception):
    """Another executor already wrote the next step of this order."""


class Execution:
    """One order's execution, resumed from whatever its history already says."""

    def __init__(self, store: EventStore, chain: SimulatedChain, settings: Settings,
                 state: OrderState, order: OrderRequested, routed: Routed) -> None:
        self.store, self.chain, self.settings = store, chain, settings
        self.state, self.order, self.routed = state, order, routed
        self.order_id = order.order_id

    async def append(self, event: Event) -> None:
        [stream_id] = await self.store.append([event])
        if stream_id is None:
            raise Superseded(f"{event.type} #{event.seq}")
        self.state.apply(event)

    @property
    def next_seq(self) -> int:
        return self.state.last_seq + 1

    async def run(self) -> None:
        if self.state.built is None:
            tx = build(self.order, self.routed)
            await self.append(Built(
                order_id=self.order_id, seq=self.next_seq, dex=self.routed.dex,
                instructions=tx.instructions, wraps_sol=tx.wraps_sol, unwraps_sol=tx.unwraps_sol,
            ))
        attempt = self.state.failed_attempts + 1
        # Taking over (after a crash, or racing another executor): whatever already landed
        # is the result, and nothing is sent again.
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
        """Sends until one attempt lands; None when the order failed instead."""
        while True:
            try:
                return await self.chain.send(self.order, self.routed, attempt)
            except TransientError as error:
                last = attempt >= self.settings.max_attempts
                delay = None if last else backoff_ms(attempt, self.settings.retry_base_ms)
                log.warning("order %s attempt %d failed: %s", self.order_id, attempt, error)
                await self.append(AttemptFailed(
                    order_id=self.order_id, seq=self.next_seq, attempt=attempt,
                    error=str(error), retryable=not last, retry_in_ms=delay,
                ))
                if delay is None:
                    await self.append(Failed(
                        order_id=self.order_id, seq=self.next_seq, reason="attempts_exhausted",
                        error=f"failed after {attempt} attempts; last error: {error}",
                        attempts=attempt,
                    ))
                    return None
                await asyncio.sleep(delay / 1000)
                attempt += 1

    async def finish(self, landing: Landing) -> None:
        if landing.executed:
            await self.append(Confirmed(
                order_id=self.order_id, seq=self.next_seq, tx_hash=landing.signature,
                attempt=landing.attempt, dex=self.routed.dex, amount_in=self.order.amount_in,
                amount_out=landing.amount_out, min_amount_out=self.routed.min_amount_out,
                executed_price=landing.executed_price, simulated_ms=landing.latency_ms,
            ))
            return
        await self.append(Failed(
            order_id=self.order_id, seq=self.next_seq, reason="slippage_exceeded",
            error=(
                f"price moved {landing.adverse_move:.3%} against the order: "
                f"{landing.amount_out} out is below minAmountOut {self.routed.min_amount_out}"
            ),
            attempts=landing.attempt,
        ))


async def execute(store: EventStore, chain: SimulatedChain, settings: Settings,
                  routed: Routed) -> None:
    state = fold(routed.order_id, await store.history(routed.order_id))
    if state.is_terminal or state.requested is None or state.routed is None:
        return
    try:
        await Execution(store, chain, settings, state, state.requested, state.routed).run()
    except Superseded as superseded:
        log.info("order %s is in other hands (%s already written)", routed.order_id, superseded)


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    chain = SimulatedChain(store.redis, settings)

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            assert isinstance(entry.event, Routed)
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
