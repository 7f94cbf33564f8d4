"""The gateway's /metrics: its own series, and every consumer group's backlog as Redis
has it at the moment of the scrape."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import GROUP_BACKLOG, TAIL_EVENTS

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Scrape:
    def __init__(self) -> None:
        self.tail_events_counted = 0

    def render(self, tail_events_seen: int, backlog: dict[str, int]) -> bytes:
        """``backlog``: per consumer group, entries pending or not yet read."""
        TAIL_EVENTS.inc(tail_events_seen - self.tail_events_counted)
        self.tail_events_counted = tail_events_seen
        for group, count in backlog.items():
            GROUP_BACKLOG.labels(group).set(count)
        return generate_latest()
