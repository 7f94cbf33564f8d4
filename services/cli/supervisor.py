"""When ``oee up`` starts a service again that exited, and when it gives up.

A process that exits is started again after a delay that doubles with each exit (from
``first_s`` up to ``cap_s``) and starts again from ``first_s`` once the process has run for
``settled_s``. One that keeps exiting within ``startup_s`` of its start cannot start: after
``give_up_after`` such crashes in a row, ``oee up`` stops with the reason, rather than
restarting it forever. Pure: the clock is given, so a test runs hours in no time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    cap_s: float = 30.0
    settled_s: float = 60.0
    startup_s: float = 10.0
    give_up_after: int = 5


class GaveUp(Exception):
    """A process crashed ``crashes`` times in a row at start-up."""

    def __init__(self, crashes: int, startup_s: float) -> None:
        super().__init__(f"exited {crashes} times in a row within {startup_s:g} s of its "
                         "start")
        self.crashes = crashes


# A process slot: its service, and which of that service's processes.
Key = tuple[str, int]


@dataclass
class _Slot:
    started_at: float
    delay_s: float
    crashes: int = 0
    due_at: float | None = None


@dataclass
class Restarts:
    """The restart schedule of every process slot ``oee up`` runs, by key."""

    clock: Callable[[], float]
    backoff: Backoff = field(default_factory=Backoff)
    slots: dict[Key, _Slot] = field(default_factory=dict)

    def started(self, key: Key) -> None:
        slot = self.slots.get(key)
        if slot is None:
            self.slots[key] = _Slot(self.clock(), self.backoff.first_s)
        else:
            slot.started_at, slot.due_at = self.clock(), None

    def exited(self, key: Key) -> float:
        """The delay before ``key`` starts again; raises GaveUp when it should not."""
        slot, now, backoff = self.slots[key], self.clock(), self.backoff
        ran_s = now - slot.started_at
        if ran_s >= backoff.settled_s:
            slot.delay_s = backoff.first_s
        slot.crashes = slot.crashes + 1 if ran_s < backoff.startup_s else 0
        if slot.crashes >= backoff.give_up_after:
            raise GaveUp(slot.crashes, backoff.startup_s)
        delay = slot.delay_s
        slot.due_at = now + delay
        slot.delay_s = min(backoff.cap_s, delay * 2)
        return delay

    def waiting(self, key: Key) -> bool:
        """Exited, and not yet started again."""
        slot = self.slots.get(key)
        return slot is not None and slot.due_at is not None

    def due(self) -> list[Key]:
        """The slots whose delay has passed: to start now."""
        now = self.clock()
        return [key for key, slot in self.slots.items()
                if slot.due_at is not None and slot.due_at <= now]
