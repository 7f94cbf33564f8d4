"""A few counters and one histogram, in the Prometheus text format."""

from __future__ import annotations

from bisect import bisect_left
from typing import Protocol


class TailStats(Protocol):
    events_seen: int


class Histogram:
    """Counts of observations at or below each bound (seconds), Prometheus style."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def lines(self, name: str) -> list[str]:
        rows, cumulative = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            rows.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        return [*rows, f"{name}_sum {self.total:.6f}", f"{name}_count {cumulative}"]


DELIVERY = "oee_ws_delivery_seconds"


class Metrics:
    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.subscribers = 0
        self.statuses_sent = 0
        # From an event's time to its status message handed to the client's socket.
        self.delivery = Histogram((0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                   1.0, 2.5))

    def render(self, tail: TailStats, backlog: dict[str, int]) -> str:
        """``backlog``: per consumer group, entries pending or not yet read; what an
        operator scales a service by."""
        rows = [
            ("oee_orders_accepted_total", "counter", "Orders appended.", self.accepted),
            ("oee_orders_rejected_total", "counter", "Order bodies refused.", self.rejected),
            ("oee_ws_subscribers", "gauge", "WebSocket subscribers now.", self.subscribers),
            ("oee_statuses_sent_total", "counter", "Status messages sent.", self.statuses_sent),
            ("oee_tail_events_total", "counter", "Events read by the tail.", tail.events_seen),
        ]
        lines = []
        for name, kind, help_text, value in rows:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        lines += ["# HELP oee_group_backlog Entries a consumer group has pending or not read.",
                  "# TYPE oee_group_backlog gauge"]
        lines += [f'oee_group_backlog{{group="{group}"}} {count}'
                  for group, count in sorted(backlog.items())]
        lines += [f"# HELP {DELIVERY} From an event's time to its status message sent.",
                  f"# TYPE {DELIVERY} histogram", *self.delivery.lines(DELIVERY)]
        return "\n".join(lines) + "\n"
