"""``oee bench`` and ``oee soak``: their options. The work is in ``bench.load`` and
``bench.soak``, imported when run, so other ``oee`` commands start fast."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Adds the commands to ``oee``'s sub-parsers."""
    soak = commands.add_parser("soak", help="mixed load with periodic kills, then an audit")
    soak.add_argument("--minutes", type=float, default=5.0)
    soak.add_argument("--rate", type=float, default=20.0, help="orders per second")
    soak.add_argument("--kill-every", type=float, default=10.0, help="seconds between kills")
    soak.set_defaults(func=run_soak)
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
    bench.add_argument("--orders-out", default=None, metavar="FILE",
                       help="write each measured order's submit, events' times, end and"
                       " simulated delays to FILE, one JSON line each")
    bench.add_argument("--curve", action="store_true",
                       help="the cost per order at each of --levels and at saturation, each"
                       " on a fresh system (--spawn) with zero delays: one row per load")
    bench.add_argument("--levels", type=rates, default=None,
                       help="with --curve: orders per second, comma-separated (default"
                       " 20,250,1000); --duration S each (default 20), then a burst of"
                       " --orders N (default 20000) with 200 in flight")
    bench.set_defaults(func=run_bench)


def rates(text: str) -> tuple[float, ...]:
    """``20,250,1000``: each a positive number of orders per second."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not numbers: {text!r}") from None
    if not all(value > 0 for value in values):
        raise argparse.ArgumentTypeError(f"a rate is more than 0: {text!r}")
    return values


def run_bench(args: argparse.Namespace) -> int:
    from bench.load import Options, run
    from shared.process import hold_many_objects

    hold_many_objects()  # the bench's own WebSocket clients, by the thousand
    if args.curve:
        return run_curve(args)
    return run(Options(
        orders=args.orders, duration_s=args.duration, rate=args.rate,
        in_flight=args.in_flight, ws=args.ws, as_json=args.json, spawn=args.spawn,
        executors=args.executors, quote_latency_ms=args.quote_latency_ms,
        execution_latency_ms=args.execution_latency_ms, sample_s=args.sample_every,
        warmup=args.warmup, api_key=args.key, order_type=args.order_type,
        resting=args.resting, orders_out=args.orders_out,
    ), args.url)


def run_curve(args: argparse.Namespace) -> int:
    from bench import curve
    from bench.load import Options

    # Only what a curve leaves open: its loads, delays and spawning are its own.
    base = Options(executors=args.executors, sample_s=args.sample_every,
                   warmup=args.warmup)
    return curve.run(base, args.levels or curve.LEVELS, args.duration or curve.DURATION_S,
                     args.orders or curve.BURST_ORDERS, args.json)


def run_soak(args: argparse.Namespace) -> int:
    from bench.soak import run

    return run(args.minutes, args.rate, args.kill_every)
