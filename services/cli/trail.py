"""The audit-trail commands of ``oee``: replay, audit, export and events, with their flags.
Each command's work lives in its own module, imported when run; this only parses."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from shared.config import load


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
    replay.set_defaults(func=replay_log)
    audit = commands.add_parser(
        "audit", help="check the invariants over the event log; exit 0 only if all hold")
    _window(audit)
    audit.add_argument("--json", action="store_true", help="the report as JSON")
    audit.add_argument("--from", dest="source", type=Path, default=None, metavar="FILE",
                       help="audit an export offline (no Redis, no PostgreSQL)")
    audit.set_defaults(func=audit_log)
    export = commands.add_parser("export", help="the event log as JSON Lines, to stdout")
    _window(export)
    export.set_defaults(func=export_log)
    events = commands.add_parser("events", help="one order's history, for a person")
    events.add_argument("order_id", metavar="ORDER_ID")
    events.add_argument("--json", action="store_true", help="as export lines (JSON Lines)")
    events.set_defaults(func=order_events)


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


def replay_log(args: argparse.Namespace) -> int:
    from services.cli.replay import ReplayOptions, default_jobs, replay

    options = ReplayOptions(into=args.into, replace=args.replace, verify=args.verify,
                            source=args.source, progress=not args.quiet,
                            jobs=max(1, args.jobs or default_jobs()))
    return asyncio.run(replay(load(), options, sys.stdout, sys.stderr))


def audit_log(args: argparse.Namespace) -> int:
    from services.cli.audit import AuditOptions, audit
    from services.cli.eventlog import Window

    options = AuditOptions(window=Window(args.since, args.until), as_json=args.json,
                           source=args.source)
    return asyncio.run(audit(load(), options, sys.stdout))


def export_log(args: argparse.Namespace) -> int:
    from services.cli.eventlog import Window
    from services.cli.export import export

    asyncio.run(export(load(), Window(args.since, args.until), sys.stdout))
    return 0


def order_events(args: argparse.Namespace) -> int:
    from services.cli.history import events

    return asyncio.run(events(load(), args.order_id, args.json, sys.stdout))
