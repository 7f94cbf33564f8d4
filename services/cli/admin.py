"""The operator's commands of ``oee``: ``keys create|list|revoke``, ``settings`` and
``repartition``. This only parses; the work is in ``keys``, ``settings`` and
``repartition``, imported when run so other commands start fast."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    """Adds the commands to ``oee``'s sub-parsers."""
    repartition = commands.add_parser(
        "repartition", help="record another OEE_PARTITIONS once nothing is in flight")
    repartition.add_argument("count", type=int)
    repartition.set_defaults(func=repartition_log)
    settings = commands.add_parser("settings", help="every setting as this environment sets it")
    settings.add_argument("--markdown", action="store_true",
                          help="the README's table of every setting instead")
    settings.set_defaults(func=show_settings)
    keys = commands.add_parser("keys", help="API keys: create, list, revoke")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="a new account and its key")
    create.add_argument("name", help="the account's name")
    create.add_argument("--operator", action="store_true",
                        help="the operator role (default: trader)")
    create.set_defaults(func=create_key)
    keys_commands.add_parser(
        "list", help="every key: name, role, created, last used").set_defaults(func=list_keys)
    revoke = keys_commands.add_parser("revoke", help="gateways refuse the key within 2 s")
    revoke.add_argument("name")
    revoke.set_defaults(func=revoke_key)


def repartition_log(args: argparse.Namespace) -> int:
    from services.cli.repartition import main

    return main(args.count)


def show_settings(args: argparse.Namespace) -> int:
    from services.cli.settings import run

    return run(args.markdown)


def create_key(args: argparse.Namespace) -> int:
    from services.cli.keys import create

    return create(args.name, args.operator)


def list_keys(args: argparse.Namespace) -> int:
    from services.cli.keys import show

    return show()


def revoke_key(args: argparse.Namespace) -> int:
    from services.cli.keys import revoke

    return revoke(args.name)
