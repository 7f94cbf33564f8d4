"""The audit-trail commands of ``oee``: replay, audit, export and events, with their flags.
Each command's work lives in its own module; this only parses and dispatches."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

COMMANDS: frozenset[str] = frozenset({"replay", "audit", "export", "events"})


def register(commands: Any) -> None:
    """Adds the commands to ``oee``'s sub-parsers."""
    replay = commands.add_parser(
        "replay", help="rebuild the orders projection from the event log into a fresh schema")
    replay.add_argument("--into", metavar="SCHEMA", default=None,
                        help="keep the rebuilt projection in this new schema "
                             "(default: rebuild, then drop)")
    replay.add_argument("--replace", action="store_true",
                        help="drop the --into schema first if it exists")
    replay.add_argument("--verify", action="store_true",
                        help="compare with the live projection; exit 0 only if identical")
    replay.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE",
                        help="replay an export (oee export) instead of the log")
    replay.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="processes sharing the work (default: one per CPU, at most 8)")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    audit = commands.add_parser(
        "audit", help="check the invariants over the event log; exit 0 only if all hold")
    _window(audit)
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE",
                       help="audit an export offline (no Redis, no PostgreSQL)")
    export = commands.add_parser("export", help="the event log as JSON Lines, to stdout")
    _window(export)
    events = commands.add_parser("events", help="one order's history, for a person")
    events.add_argument("order_id", metavar="ORDER_ID")
    events.add_argument("--json", action="store_true", help="as export lines (JSON Lines)")


def _window(parser: argparse.ArgumentParser) -> None:
    from services.cli.eventlog import parse_time

    def moment(text: str) -> Any:
        try:
            return parse_time(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parser.add_argument("--since", type=moment, default=None, metavar="T",
                        help="orders whose first event is at or after T (RFC 3339)")
    parser.add_argument("--until", type=moment, default=None, metavar="T",
                        help="orders whose first event is before T (RFC 3339)")


def run(args: argparse.Namespace) -> int:
    """Runs one of ``COMMANDS``; returns the exit status."""
    from shared.config import load

    settings = load()
    if args.command == "replay":
        from services.cli.replay import ReplayOptions, default_jobs, replay

        options = ReplayOptions(into=args.into, replace=args.replace, verify=args.verify,
                                source=args.source, progress=not args.quiet,
                                jobs=max(1, args.jobs or default_jobs()))
        return asyncio.run(replay(settings, options, sys.stdout, sys.stderr))
    if args.command == "audit":
        from services.cli.audit import AuditOptions, audit
        from services.cli.eventlog import Window

        audit_options = AuditOptions(window=Window(args.since, args.until), as_json=args.json,
                                     source=args.source)
        return asyncio.run(audit(settings, audit_options, sys.stdout))
    if args.command == "export":
        from services.cli.eventlog import Window
        from services.cli.export import export

        asyncio.run(export(settings, Window(args.since, args.until), sys.stdout))
        return 0
    from services.cli.history import events

    return asyncio.run(events(settings, args.order_id, args.json, sys.stdout))
