"""Work queues: which service acts on which event.

The log stream holds every event, for the persister and the gateway's tail. An event that a
service must act on is also put on that service's own queue stream, by the same script that
appends it to the log, so the router and the executor read only their own work instead of
reading every event and skipping five in six.
"""

from __future__ import annotations

from shared.events import AttemptFailed, Event, OrderRequested, Routed

# The services that read a queue; every other consumer group reads the log.
QUEUED_GROUPS = frozenset({"router", "executor"})


def queue_of(event: Event) -> str | None:
    """The group whose queue this event goes to, if any."""
    if isinstance(event, OrderRequested):
        return "router"
    if isinstance(event, AttemptFailed):
        return "router" if event.reroute else None
    if isinstance(event, Routed):  # and Rerouted
        return "executor"
    return None
