"""POST /admin/pools: an operator launches a token and its first pool."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from services.gateway.errors import refusal
from services.gateway.parts import parts_of
from services.gateway.views import json
from shared.accounts import Account
from shared.launches import BadLaunch, PoolLaunched, check


async def launch_pool(request: Request, account: Account) -> Response:
    if not account.is_operator:
        raise refusal(403, "x-api-key", "operator_only", "only operator keys launch pools")
    try:
        launch = msgspec.json.decode(await request.body(), type=PoolLaunched)
    except msgspec.ValidationError as problem:
        raise refusal(400, "body", "type", str(problem)) from None
    except msgspec.DecodeError as problem:
        raise refusal(400, "body", "json", f"the body is not valid JSON: {problem}") from None
    launches = parts_of(request).launches
    await launches.catch_up()
    try:
        launch = check(launch)
    except BadLaunch as bad:
        raise refusal(400, bad.field, "launch", str(bad)) from None
    await launches.append(launch)
    return json(msgspec.to_builtins(launch), 201)
