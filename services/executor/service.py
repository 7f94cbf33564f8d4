"""The executor: consume Routed, then build, submit and confirm the swap, appending each
step as the domain decides it (``shared.decisions``). Retries transient failures with
exponential backoff, at most ``max_attempts``."""

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
from services.executor.execution import build
from shared import decisions, tracing
from shared.config import Settings
from shared.decisions import Failure, Refused
from shared.events import (
    AttemptFailed,
    Built,
    Confirmed,
    Event,
    Routed,
    Submitted,
    now,
)
from shared.launches import Launches
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
                 state: OrderState) -> None:
        # The domain begins an execution only of a requested and routed order.
        assert state.requested is not None and state.routed is not None
        self.store, self.chain, self.settings = store, chain, settings
        self.state, self.order, self.routed = state, state.requested, state.routed
        self.order_id = state.order_id
        self.submitted_at: datetime | None = None

    @property
    def last_step(self) -> Event:
        """What the order's next step follows in its trace: its build, or a newer route."""
        built = self.state.built
        return built if built is not None and built.seq > self.routed.seq else self.routed

    async def append(self, events: list[Event]) -> None:
        """One event at a time, each on the state the one before left, each carrying the
        context of the span it was made in."""
        for event in tracing.made(events):
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
            # A waiting order's wait for its price or its pool is not the engine's time.
            began = self.state.fired.at if self.state.fired is not None else self.order.at
            ORDER_SECONDS.labels(event.status).observe((event.at - began).total_seconds())

    async def run(self, taken_over: bool) -> None:
        """Goes on from the events the execution began with (``decisions.execute``), in
        the state they left; ``taken_over``: it began with none."""
        if self.state.is_terminal:
            return  # the last attempt had failed: its end was all that was left
        attempt = self.state.failed_attempts + 1
        landing = None
        if taken_over:
            # After a crash, or racing another executor: whatever already landed is the
            # result, and nothing is sent again.
            landing = await self.chain.find_landing(self.order_id, range(1, attempt + 1))
        if landing is None:
            landing = await self.submit_with_retries(attempt)
            if landing is None:
                return
        else:
            await self.append(decisions.land(self.state, landing))
        with tracing.following("confirm", self.last_step):
            landing = await self.chain.confirmation(landing)
            await self.append(decisions.confirm(self.state, landing))
        self.chain.settle(landing)

    async def submit_with_retries(self, attempt: int) -> Landing | None:
        """Sends until one attempt lands (its ``Submitted`` in); None when this executor is
        done with the order: it failed, or it needs a new route first (the router appends
        one, and an executor picks the order up again from there)."""
        while True:
            with tracing.following("submit", self.last_step):
                sent = await self.send(attempt)
                if not isinstance(sent, Failure):
                    # Submitted says only what the transaction says of itself (its
                    # signature and attempt), so it goes in the write that lands it.
                    landing = self.chain.land(sent)
                    try:
                        await self.append(decisions.land(self.state, sent))
                    finally:
                        [landed] = await landing
                    return landed
                log.warning("order %s attempt %d failed: %s", self.order_id, attempt,
                            sent.error)
                await self.append(decisions.fail_attempt(
                    self.state, attempt, sent, max_attempts=self.settings.max_attempts,
                    retry_base_ms=self.settings.retry_base_ms))
            # Routed again first, or ended: no longer this executor's to send.
            if self.state.actor != "executor":
                return None
            await asyncio.sleep(decisions.backoff_ms(attempt, self.settings.retry_base_ms)
                                / 1000)
            attempt += 1

    async def send(self, attempt: int) -> Landing | Failure:
        """Attempt ``attempt``: the transaction as it reaches the chain, or why it did not."""
        try:
            self.check_quote_age()
            return await self.chain.send(self.order, self.routed, attempt)
        except TransientError as error:
            return Failure("transient", str(error))
        except SlippageExceeded as error:
            return Failure("slippage", str(error))
        except QuoteExpired as error:
            return Failure("expired", str(error))

    def check_quote_age(self) -> None:
        age_ms = (now() - self.routed.at).total_seconds() * 1000
        if age_ms > self.settings.quote_max_age_ms:
            raise QuoteExpired(
                f"QuoteExpired: the route is {age_ms:.0f} ms old, "
                f"older than {self.settings.quote_max_age_ms:.0f} ms"
            )


async def execute(store: EventStore, chain: SimulatedChain, settings: Settings,
                  entry: Entry, traced: tracing.Consumer) -> None:
    routed = entry.event
    try:
        with traced.span("build", entry):
            begun = await begin(store, chain, settings, entry)
        if begun is not None:
            execution, taken_over = begun
            await execution.run(taken_over)
    except Superseded as superseded:
        log.info("order %s is in other hands (%s already written)", routed.order_id, superseded)


async def begin(store: EventStore, chain: SimulatedChain, settings: Settings,
                entry: Entry) -> tuple[Execution, bool] | None:
    """The order's execution with its build appended, and whether it had begun already
    (taken over); None where the order is not the executor's to act on.

    Decided first on the history the queue entry carries, the order's as of its route. Where
    the order moved on since (a redelivered entry), the store refuses the build, whose seq
    is taken, and the order is decided again on the history the store holds now."""
    order_id = entry.event.order_id
    if entry.history is not None:
        try:
            begun = await begin_on(store, chain, settings, fold(order_id, entry.history))
        except Superseded:
            begun = None
        if begun is not None:
            return begun
    return await begin_on(store, chain, settings, fold(order_id, await store.history(order_id)))


async def begin_on(store: EventStore, chain: SimulatedChain, settings: Settings,
                   state: OrderState) -> tuple[Execution, bool] | None:
    begun = decisions.execute(state, build)
    if isinstance(begun, Refused):
        # A redelivered route of an order that moved on (waiting for a new route, or
        # ended): not the executor's to act on.
        return None
    execution = Execution(store, chain, settings, state)
    await execution.append(begun)
    return execution, not begun


async def main(settings: Settings, stop: asyncio.Event) -> None:
    store = EventStore(settings)
    chain = SimulatedChain(store.redis, settings)

    launches = Launches(store.redis, settings.namespace)
    traced = tracing.Consumer(store, "executor")

    async def handle(entries: Sequence[Entry]) -> None:
        for entry in entries:
            assert isinstance(entry.event, Routed)
            if any(find(token) is None for token in entry.event.route.path):
                await launches.catch_up()  # a token launched since this process looked
            await execute(store, chain, settings, entry, traced)

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
        await chain.close()
        await store.close()
