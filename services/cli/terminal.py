"""The terminal tools of ``oee``: ``submit`` (one order, watched to its end) and ``status``
(groups, backlog, memory, PostgreSQL's delay). This only parses; the work is in ``submit``
and ``status``, imported when run so other commands start fast."""

from __future__ import annotations

import argparse
from typing import Any

from shared.config import load


def register(commands: Any) -> None:
    """Adds the commands to ``oee``'s sub-parsers."""
    submit = commands.add_parser(
        "submit", help="submit one order and print each status; exit 0 only if confirmed")
    submit.add_argument("token_in", metavar="TOKEN_IN")
    submit.add_argument("token_out", metavar="TOKEN_OUT")
    submit.add_argument("amount", metavar="AMOUNT", help="in token units, e.g. 0.5")
    submit.add_argument("--slippage", type=float, default=0.01,
                        help="a fraction in (0, 0.5] (default 0.01)")
    submit.add_argument("--type", default=None, help="order type (default market)")
    submit.add_argument("--idempotency-key", default=None,
                        help="a retry with the same key never makes a second order")
    submit.add_argument("--url", default=None, help="gateway (default http://127.0.0.1:$PORT)")
    submit.add_argument("--key", default=None,
                        help="API key (default $OEE_API_KEY, else $OEE_DATA_DIR/api-key)")
    submit.add_argument("--json", action="store_true", help="print each message as JSON")
    submit.set_defaults(func=submit_order)
    status = commands.add_parser(
        "status", help="consumer groups, backlog, dead letters, memory, PostgreSQL's delay")
    status.add_argument("--json", action="store_true", help="the report as JSON")
    status.set_defaults(func=show_status)


def submit_order(args: argparse.Namespace) -> int:
    from services.cli import submit

    order = submit.Order(token_in=args.token_in, token_out=args.token_out,
                         amount=args.amount, slippage=args.slippage, type=args.type,
                         idempotency_key=args.idempotency_key)
    return submit.run(load(), order, args.url, args.key, args.json)


def show_status(args: argparse.Namespace) -> int:
    from services.cli import status

    return status.run(load(), args.json)
