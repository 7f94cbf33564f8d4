"""The seeded launch schedule: what each slot launches."""

from __future__ import annotations

import msgspec

from services.trigger.schedule import planned, slot_of
from shared import tokens
from shared.launches import check


def test_a_slot_launches_the_same_token_in_every_process() -> None:
    first, again = planned("s", 7), planned("s", 7)
    # Everything but the moment it is written.
    assert msgspec.structs.replace(first, at=again.at) == again


def test_every_slot_launches_a_new_token_the_market_takes() -> None:
    seen = set()
    for slot in (0, 1, 35, 36, 10**6, 29_651_234, 10**12):
        launch = check(planned("s", slot))
        assert tokens.find(launch.mint) is None and tokens.is_mint(launch.mint)
        assert launch.symbol.endswith(planned("s", slot).symbol[2:])
        seen.add((launch.mint, launch.symbol))
    assert len(seen) == 7


def test_the_seed_chooses_the_launches() -> None:
    assert planned("a", 3).mint != planned("b", 3).mint
    assert {planned("a", n).venue for n in range(40)} == {"raydium", "meteora"}
    assert {planned("a", n).quote for n in range(40)} == {"SOL", "USDC"}


def test_slots_are_intervals_of_the_clock() -> None:
    assert slot_of(59.9, 60) == 0 and slot_of(60.0, 60) == 1
    assert slot_of(1.26, 0.5) == 2
