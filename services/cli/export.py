"""``oee export``: the event log as JSON Lines (services/cli/jsonl.py), in stream order,
from one snapshot. ``--since`` / ``--until`` select whole orders by their first event."""

from __future__ import annotations

from typing import TextIO

from services.cli import eventlog, jsonl
from shared.config import Settings


async def export(settings: Settings, window: eventlog.Window, out: TextIO) -> int:
    """Writes the lines to ``out``; returns how many events it wrote."""
    written = 0
    async with eventlog.snapshot(settings.database_url) as conn:
        schema = await eventlog.live_schema(conn)
        async for chunk in eventlog.rows(conn, schema, window, "stream"):
            # The stored JSON goes out as it is: nothing is decoded or re-encoded.
            out.write("".join(jsonl.line(ms, seq, data) for ms, seq, data in chunk))
            written += len(chunk)
    return written
