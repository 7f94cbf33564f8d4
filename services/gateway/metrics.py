"""A few counters in the Prometheus text format."""

from __future__ import annotations

from typing import Protocol


class TailStats(Protocol):
    events_seen: int


class Metrics:
    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.subscribers = 0
        self.statuses_sent = 0

    def render(self, tail: TailStats) -> str:
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
        return "\n".join(lines) + "\n"
