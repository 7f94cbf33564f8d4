"""The ``oee`` command: exactly the sub-commands scripts depend on, each with the function
that runs it."""

from __future__ import annotations

import argparse

import pytest

from services.cli.main import parser

COMMANDS = {
    "up", "gateway", "router", "executor", "persister", "trigger", "migrate", "keys",
    "replay", "audit", "export", "events", "launch", "submit", "status", "settings", "bench",
    "soak", "repartition",
}


def sub_commands(command: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub for action in actions for name, sub in action.choices.items()}


def test_oee_has_exactly_the_stable_commands() -> None:
    oee = sub_commands(parser())
    assert set(oee) == COMMANDS
    assert set(sub_commands(oee["keys"])) == {"create", "list", "revoke"}


@pytest.mark.parametrize("argv", [
    ["up", "--executors", "2", "--cluster", "--data-dir", "d"], ["gateway"], ["router"],
    ["executor"], ["persister"], ["trigger"], ["migrate"], ["keys", "create", "ops",
    "--operator"], ["keys", "list"], ["keys", "revoke", "ops"], ["replay", "--verify"],
    ["audit", "--json"], ["export", "--since", "2026-01-01T00:00:00Z"], ["events", "o1"],
    ["launch", "NEW", "--mint", "M", "--decimals", "6", "--venue", "raydium", "--price", "1",
     "--liquidity", "10"], ["submit", "SOL", "USDC", "0.5", "--slippage", "0.02"],
    ["status", "--json"], ["settings", "--markdown"], ["repartition", "8"],
    ["soak", "--minutes", "1", "--rate", "5", "--kill-every", "3"],
    ["bench", "--spawn", "--rate", "400", "--duration", "15", "--quote-latency-ms", "0",
     "--execution-latency-ms", "0", "--json", "--ws", "--type", "limit", "--resting",
     "--in-flight", "5", "--orders", "10", "--url", "u", "--executors", "2",
     "--sample-every", "1", "--key", "k", "--warmup", "0"],
    ["bench", "--curve", "--levels", "20,50", "--duration", "2", "--orders", "300"],
], ids=lambda argv: " ".join(argv[:2]))
def test_every_command_parses_its_options_and_names_what_runs_it(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    assert args.command == argv[0]
    assert callable(args.func)
