"""The ``oee`` command: one sub-command per service, plus ``up``, ``migrate`` and the tools.

Each command's module adds its parser (``register``) with the function that runs it
(``set_defaults(func=...)``); that function returns the exit status."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench import commands as tools
from services.cli import admin, launch, service, terminal, trail, up
from services.cli.preflight import CannotStart
from shared.config import ConfigError


def parser() -> argparse.ArgumentParser:
    """``oee`` and every sub-command, with its options."""
    oee = argparse.ArgumentParser(prog="oee", description="Order execution engine")
    commands = oee.add_subparsers(dest="command", required=True)
    for module in (up, tools, service, launch, admin, terminal, trail):
        module.register(commands)
    return oee


def main(argv: Sequence[str] | None = None) -> None:
    oee = parser()
    args = oee.parse_args(argv)
    try:
        sys.exit(args.func(args))
    except ConfigError as problem:
        oee.exit(2, f"oee: configuration error: {problem}\n")
    except CannotStart as problem:
        oee.exit(1, f"oee {args.command}: cannot start: {problem}\n")
