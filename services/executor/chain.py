"""The simulated chain: sending takes a while and may fail transiently; confirming takes
the rest of the execution time, and the price may have moved by then."""

from __future__ import annotations

import asyncio

from shared.config import Settings
from shared.seeded import rng


class TransientError(Exception):
    """The attempt failed in a way that a later attempt may not."""


TRANSIENT_ERRORS = (
    "RPC node timed out",
    "blockhash not found",
    "transaction dropped from the leader's queue",
    "node is behind",
)

# Sending takes this share of the execution time; confirming takes the rest.
SEND_SHARE = 0.25


class SimulatedChain:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _latency_s(self, order_id: str, attempt: int) -> float:
        span = self.settings.execution_latency_ms
        draw = rng(self.settings.seed, order_id, attempt, "latency")
        return draw.uniform(span.low, span.high) / 1000

    async def send(self, order_id: str, attempt: int) -> None:
        await asyncio.sleep(self._latency_s(order_id, attempt) * SEND_SHARE)
        draw = rng(self.settings.seed, order_id, attempt, "failure")
        if draw.random() < self.settings.failure_rate:
            raise TransientError(draw.choice(TRANSIENT_ERRORS))

    async def confirm(self, order_id: str, attempt: int) -> float:
        """Waits for confirmation; returns how far the price moved against the order."""
        await asyncio.sleep(self._latency_s(order_id, attempt) * (1 - SEND_SHARE))
        drift = self.settings.price_drift
        return rng(self.settings.seed, order_id, attempt, "drift").uniform(-drift / 2, drift)
