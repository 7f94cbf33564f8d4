"""Work queues: which service acts on which event.

The log stream holds every event, for the persister and the gateway's tail. An event that
hands an order to another service (``shared.lifecycle.HANDS_OVER``) is also put on that
service's own queue stream, by the same script that appends it to the log, so the router,
the executor and the trigger read only their own work instead of reading every event and
skipping most of them.
"""

from __future__ import annotations

from shared.events import Event
from shared.lifecycle import HANDS_OVER

# The services that read a queue; every other consumer group reads the log.
QUEUED_GROUPS = frozenset(HANDS_OVER.values())

# The queues every partition has, in the order the append script's KEYS list them.
QUEUES = tuple(sorted(QUEUED_GROUPS))


def queue_of(event: Event) -> str | None:
    """The group whose queue this event goes to, if any."""
    return HANDS_OVER.get(event.move)
