"""POST /admin/pools: an operator launches a token and its first pool."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.body import body_of
from services.gateway.errors import refusal
from services.gateway.parts import parts_of
from services.gateway.views import json
from shared import tokens
from shared.accounts import Account
from shared.launches import BadLaunch, EmptyPool, PoolLaunched, check
from shared.route import Dex


class LaunchRequest(msgspec.Struct, frozen=True):
    """A token and its first pool: ``price`` is quote tokens per token and ``liquidity`` the
    quote tokens on each side, both decimal text. The engine stamps the launch's time."""

    mint: Annotated[str, msgspec.Meta(description="The token's mint: base58, 32 bytes")]
    symbol: Annotated[str, msgspec.Meta(description="1 to 10 letters or digits")]
    # A float too: 6.0 is the integer 6 to JSON Schema, as the document describes it.
    decimals: Annotated[int | float, msgspec.Meta(description="0 to 12")]
    venue: Dex
    price: Annotated[str, msgspec.Meta(description="From 1e-12 to 1e12")]
    liquidity: Annotated[str, msgspec.Meta(description="From 1e-12 to 1e12")]
    quote: Annotated[str, msgspec.Meta(description="SOL or USDC, in any case")] = "SOL"


_decoder = msgspec.json.Decoder(LaunchRequest)


async def launch_pool(request: Request, account: Account) -> Response:
    if not account.is_operator:
        raise refusal(403, "x-api-key", "operator_only", "only operator keys launch pools")
    try:
        asked = _decoder.decode(await body_of(request))
    except msgspec.ValidationError as problem:
        raise refusal(400, "body", "type", str(problem)) from None
    except msgspec.DecodeError as problem:
        raise refusal(400, "body", "json", f"the body is not valid JSON: {problem}") from None
    launches = parts_of(request).launches
    await launches.catch_up()
    launch = launch_of(asked)
    try:
        launch = check(launch)
    except BadLaunch as bad:
        # A well-formed launch of a token that is listed already conflicts with the market
        # as it is, which the request alone does not say: 409, as the same request sent
        # twice would get. One whose fields are each in range but together leave a side of
        # the pool empty cannot be carried out: 422.
        status = (409 if listed_already(launch, bad.field) else
                  422 if isinstance(bad, EmptyPool) else 400)
        raise refusal(status, bad.field, "launch", str(bad)) from None
    await launches.append(launch)
    return json(msgspec.to_builtins(launch), 201)


def launch_of(asked: LaunchRequest) -> PoolLaunched:
    """The launch asked for, stamped now; Refusal for a decimals that is not whole."""
    if isinstance(asked.decimals, float) and not asked.decimals.is_integer():
        raise refusal(400, "decimals", "launch", "decimals must be a whole number")
    return PoolLaunched(mint=asked.mint, symbol=asked.symbol, decimals=int(asked.decimals),
                        venue=asked.venue, price=asked.price, liquidity=asked.liquidity,
                        quote=asked.quote)


def listed_already(launch: PoolLaunched, field: str) -> bool:
    if field == "mint":
        return tokens.is_mint(launch.mint) and tokens.find(launch.mint) is not None
    return field == "symbol" and tokens.find(launch.symbol.upper()) is not None
