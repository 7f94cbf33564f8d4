"""Scheduled launches on the real store: however many triggers try a slot, one launch."""

from __future__ import annotations

import asyncio

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
        for slot in (1_000_001, 1_000_002, 1_000_003):
            made = await asyncio.gather(*(s.launch(slot) for s in schedules))
            assert sum(launch is not None for launch in made) == 1
            # Again later (a slow instance, a restart): nothing more.
            assert await schedules[0].launch(slot) is None
        reader = Launches(store.redis, settings.namespace)
        learned = await reader.catch_up()
        assert [launch.mint for launch in learned] == [
            planned(seed, slot).mint for slot in (1_000_001, 1_000_002, 1_000_003)]
    finally:
        for other in others:
            await other.close()
