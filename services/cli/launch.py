"""``oee launch``: an operator launches a token and its first pool on the market's stream.
Every process learns it from there; snipers waiting for its mint fire at once."""

from __future__ import annotations

import argparse
import asyncio

from shared.config import load
from shared.launches import BadLaunch, Launches, PoolLaunched, check
from shared.redis_client import connect


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    launch = commands.add_parser("launch", help="launch a token and its pool")
    launch.add_argument("symbol", help="the new token's symbol")
    launch.add_argument("--mint", required=True, help="its mint (a base58 public key)")
    launch.add_argument("--decimals", type=int, required=True)
    launch.add_argument("--venue", choices=("raydium", "meteora"), required=True)
    launch.add_argument("--price", required=True,
                        help="quote tokens per token at launch (decimal)")
    launch.add_argument("--liquidity", required=True,
                        help="quote tokens on each side of the pool (decimal)")
    launch.add_argument("--quote", default="SOL", help="the token it is paired with: SOL "
                        "(default) or USDC")
    launch.set_defaults(func=run)


async def _launch(args: argparse.Namespace) -> int:
    settings = load()
    redis = connect(settings.redis_url)
    try:
        launches = Launches(redis, settings.namespace)
        await launches.catch_up()
        launch = check(PoolLaunched(
            mint=args.mint, symbol=args.symbol, decimals=args.decimals, venue=args.venue,
            price=args.price, liquidity=args.liquidity, quote=args.quote,
        ))
        position = await launches.append(launch)
    except BadLaunch as bad:
        print(f"oee launch: {bad.field}: {bad}")
        return 2
    finally:
        await redis.aclose()
    print(f"launched {launch.symbol} ({launch.mint}) on {launch.venue}: {launch.price} "
          f"{launch.quote} each, {launch.liquidity} {launch.quote} a side; market entry "
          f"{position}")
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_launch(args))
