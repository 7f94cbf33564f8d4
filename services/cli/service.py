"""``oee gateway|router|executor|persister|trigger``: one service in this process, run as
many as you like; and ``oee migrate``. Each checks first that it can start (``preflight``),
so one that cannot says why in one line and exits at once."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from services.cli import preflight
from shared.config import Settings, load
from shared.process import Main, run, setup_logging

HELP = {
    "gateway": "HTTP and WebSocket API (PORT, default 8000)",
    "router": "quote both venues and route each order",
    "executor": "build, submit and confirm routed orders",
    "persister": "project events into PostgreSQL",
    "trigger": "watch limit and sniper orders; fire and expire them",
}


def register(commands: Any) -> None:
    """Adds the commands to ``oee``'s sub-parsers."""
    for service, text in HELP.items():
        commands.add_parser(service, help=text).set_defaults(func=serve)
    commands.add_parser("migrate", help="create or update the PostgreSQL schema").set_defaults(
        func=migrate)


def serve(args: argparse.Namespace) -> int:
    from shared import tracing

    settings = load()
    preflight.check(args.command, settings)
    tracing.start(settings, args.command)
    if args.command == "gateway":
        from services.gateway.server import serve as serve_gateway

        setup_logging(settings.log_level)
        serve_gateway(settings)
    else:
        run(_main_of(args.command))
    return 0


def _main_of(service: str) -> Main:
    # Imported here: each process loads only its own service.
    if service == "router":
        from services.router.service import main as router
        return router
    if service == "executor":
        from services.executor.service import main as executor
        return executor
    if service == "persister":
        from services.persister.service import main as persister
        return persister
    from services.trigger.service import main as trigger
    return trigger


def migrate(args: argparse.Namespace) -> int:
    from shared.db import migrate as migrate_schema

    settings: Settings = load()
    setup_logging(settings.log_level)
    preflight.postgres_answers(settings.database_url)
    applied = asyncio.run(migrate_schema(settings.database_url))
    print(f"schema up to date ({applied} migration(s) applied)")
    return 0
