"""A route as data: which pools, in what shares, and what each leg gave. Events carry it;
shared/routing.py finds it."""

from __future__ import annotations

from typing import Literal

import msgspec

Dex = Literal["raydium", "meteora"]
FULL = 10_000  # basis points


class Share(msgspec.Struct, frozen=True, rename="camel"):
    """Part of a hop's input sent to one pool."""

    dex: Dex
    base: str
    quote: str
    bps: int


class Leg(msgspec.Struct, frozen=True, rename="camel"):
    dex: Dex
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    # In base units of token_in; stays in the pool.
    fee: int
    price_impact: float


class Candidate(msgspec.Struct, frozen=True, rename="camel"):
    kind: Literal["direct", "split", "two_hop"]
    # The tokens the route passes through, and per hop the pools and their shares.
    path: list[str]
    hops: list[list[Share]]
    legs: list[Leg]
    amount_out: int
    price_impact: float

    @property
    def venues(self) -> str:
        """For clients: one venue, "raydium+meteora" for a split, "raydium>meteora" for hops."""
        names = [" + ".join(dict.fromkeys(s.dex for s in hop)) for hop in self.hops]
        if len(names) > 1:
            return ">".join(names)
        return names[0].replace(" + ", "+")

    def describe(self) -> str:
        if self.kind == "split":
            shares = ", ".join(f"{s.bps / 100:g}% {s.dex}" for s in self.hops[0])
            return f"split {shares}"
        if self.kind == "two_hop":
            return " -> ".join(self.path) + f" via {self.venues}"
        return f"{self.venues} direct"
