"""Scheduled launches on the real store: however many triggers try a slot, one launch."""

from __future__ import annotations

import asyncio
import random

from services.trigger.schedule import Schedule, planned
from shared.config import Settings
from shared.launches import Launches
from shared.stream import EventStore


async def test_many_instances_launch_each_slot_exactly_once(
        store: EventStore, settings: Settings) -> None:
    # Four triggers, each with its own connection, as four processes would be.
    others = [EventStore(settings) for _ in range(3)]
    try:
        # Its own seed: a process knows the tokens it saw launched, whatever the namespace.
        seed = settings.namespace
        schedules = [Schedule(s.redis, settings.namespace, seed, 60)
                     for s in (store, *others)]
        # Slots of this test's own: a symbol is two letters drawn from the seed and the
        # slot, and this process knows every token the tests before launched; the same
        # slots again could draw a symbol one of them took.
        first = random.randrange(10**6, 10**12)
        slots = (first, first + 1, first + 2)
        for slot in slots:
            made = await asyncio.gather(*(s.launch(slot) for s in schedules))
            assert sum(launch is not None for launch in made) == 1
            # Again later (a slow instance, a restart): nothing more.
            assert await schedules[0].launch(slot) is None
        reader = Launches(store.redis, settings.namespace)
        learned = await reader.catch_up()
        assert [launch.mint for launch in learned] == [
            planned(seed, slot).mint for slot in slots]
    finally:
        for other in others:
            await other.close()
