"""The ``oee`` command: one sub-command per service, plus ``up`` and ``migrate``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from services.cli import trail
from shared.config import ConfigError, load
from shared.process import run, setup_logging


def _migrate() -> None:
    from shared.db import migrate

    settings = load()
    setup_logging(settings.log_level)
    applied = asyncio.run(migrate(settings.database_url))
    print(f"schema up to date ({applied} migration(s) applied)")


def _gateway() -> None:
    from services.gateway.server import serve

    settings = load()
    setup_logging(settings.log_level)
    serve(settings)


def _router() -> None:
    from services.router.service import main

    run(main)


def _executor() -> None:
    from services.executor.service import main

    run(main)


def _trigger() -> None:
    from services.trigger.service import main

    run(main)


def _persister() -> None:
    from services.persister.service import main

    run(main)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="oee", description="Order execution engine")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system on this machine")
    up.add_argument("--routers", type=int, default=1)
    up.add_argument("--executors", type=int, default=1)
    up.add_argument("--persisters", type=int, default=1)
    up.add_argument("--cluster", action="store_true",
                    help="without REDIS_URL, an embedded Redis Cluster of 3 primaries")
    up.add_argument("--data-dir", default=None,
                    help="where embedded servers keep data (default: $OEE_DATA_DIR or ./.oee)")
    soak = commands.add_parser("soak", help="mixed load with periodic kills, then an audit")
    soak.add_argument("--minutes", type=float, default=5.0)
    soak.add_argument("--rate", type=float, default=20.0, help="orders per second")
    soak.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills")
    bench = commands.add_parser("bench", help="measure throughput and latency")
    bench.add_argument("--orders", type=int, default=0, help="how many (default 200)")
    bench.add_argument("--duration", type=float, default=0.0, help="or for how many seconds")
    bench.add_argument("--rate", type=float, default=0.0, help="open loop: orders per second")
    bench.add_argument("--in-flight", type=int, default=10, help="closed loop: orders at once")
    bench.add_argument("--ws", action="store_true", help="submit and follow over WebSocket")
    bench.add_argument("--type", default="market", choices=("market", "limit", "sniper"),
                       dest="order_type", help="the orders: market, limit or sniper (a sniper"
                       " run launches their pool once all are open)")
    bench.add_argument("--resting", action="store_true",
                       help="limit orders the market does not meet: each cancelled once open")
    bench.add_argument("--json", action="store_true", help="print the result as JSON")
    bench.add_argument("--url", default=None, help="gateway (default http://127.0.0.1:$PORT)")
    bench.add_argument("--spawn", action="store_true", help="start a system for the run")
    bench.add_argument("--executors", type=int, default=1, help="with --spawn")
    bench.add_argument("--quote-latency-ms", default=None, help="with --spawn")
    bench.add_argument("--execution-latency-ms", default=None, help="with --spawn")
    bench.add_argument("--sample-every", type=float, default=5.0,
                       help="seconds between samples of backlog and memory")
    bench.add_argument("--key", default=None,
                       help="API key to submit with (default $OEE_API_KEY; --spawn makes one)")
    bench.add_argument("--warmup", type=int, default=20,
                       help="orders run first and left out of the figures")
    commands.add_parser("gateway", help="HTTP and WebSocket API (PORT, default 8000)")
    commands.add_parser("router", help="quote both venues and route each order")
    commands.add_parser("executor", help="build, submit and confirm routed orders")
    commands.add_parser("persister", help="project events into PostgreSQL")
    commands.add_parser("trigger", help="watch limit and sniper orders; fire and expire them")
    from services.cli import launch

    launch.register(commands)
    commands.add_parser("migrate", help="create or update the PostgreSQL schema")
    repartition = commands.add_parser(
        "repartition", help="record another OEE_PARTITIONS once nothing is in flight")
    repartition.add_argument("count", type=int)
    settings = commands.add_parser("settings", help="every setting as this environment sets it")
    settings.add_argument("--markdown", action="store_true",
                          help="the README's table of every setting instead")
    from services.cli import terminal

    terminal.register(commands)
    trail.register(commands)
    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    keys_create = keys_commands.add_parser("create", help="a new account and its key")
    keys_create.add_argument("name", help="the account's name")
    keys_create.add_argument("--operator", action="store_true",
                             help="the operator role (default: trader)")
    keys_commands.add_parser("list", help="every key: name, role, created, last used")
    keys_revoke = keys_commands.add_parser("revoke", help="gateways refuse the key within 5 s")
    keys_revoke.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command in trail.COMMANDS:
            sys.exit(trail.run(args))
        if args.command == "up":
            from services.cli.up import up as run_up

            sys.exit(run_up(args.routers, args.executors, args.persisters, args.data_dir,
                            cluster=args.cluster))
        if args.command == "repartition":
            from services.cli.repartition import main as run_repartition

            sys.exit(run_repartition(args.count))
        if args.command == "bench":
            from services.cli.bench import Options
            from services.cli.bench import run as run_bench
            from shared.process import hold_many_objects

            hold_many_objects()  # the bench's own WebSocket clients, by the thousand

            sys.exit(run_bench(Options(
                orders=args.orders, duration_s=args.duration, rate=args.rate,
                in_flight=args.in_flight, ws=args.ws, as_json=args.json, spawn=args.spawn,
                executors=args.executors, quote_latency_ms=args.quote_latency_ms,
                execution_latency_ms=args.execution_latency_ms, sample_s=args.sample_every,
                warmup=args.warmup, api_key=args.key, order_type=args.order_type,
                resting=args.resting,
            ), args.url))
        if args.command == "keys":
            from services.cli import keys as keys_cli

            if args.keys_command == "create":
                sys.exit(keys_cli.create(args.name, args.operator))
            if args.keys_command == "revoke":
                sys.exit(keys_cli.revoke(args.name))
            sys.exit(keys_cli.show())
        if args.command == "settings":
            from services.cli import settings as settings_cli

            sys.exit(settings_cli.run(args.markdown))
        if args.command in terminal.COMMANDS:
            sys.exit(terminal.run(args))
        if args.command == "launch":
            sys.exit(launch.run(args))
        if args.command == "soak":
            from services.cli.soak import run as run_soak

            sys.exit(run_soak(args.minutes, args.rate, args.kill_every))
        {
            "gateway": _gateway,
            "router": _router,
            "executor": _executor,
            "persister": _persister,
            "trigger": _trigger,
            "migrate": _migrate,
        }[args.command]()
    except ConfigError as problem:
        parser.exit(2, f"oee: configuration error: {problem}\n")

