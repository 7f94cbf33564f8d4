"""DELETE /orders/{id}: an open order ends cancelled; once routing started, 409.

The store decides a race with the trigger: one of the two events goes in.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from services.gateway.errors import refusal
from services.gateway.parts import parts_of
from services.gateway.queries import events_of
from services.gateway.views import CancelAnswer, json
from shared import decisions
from shared.accounts import Account
from shared.order import fold

# Appends lost to another event of the same order before the cancel gives up.
RACES = 3


async def cancel(request: Request, account: Account) -> Response:
    parts = parts_of(request)
    order_id, events = await events_of(request, account)
    # A lost race (with OrderOpened, say) leaves the order open: decide again from there.
    for _ in range(RACES):
        decided = decisions.cancel(fold(order_id, events), account.name)
        if isinstance(decided, decisions.Refused):
            raise refusal(409, "orderId", "not_open", decided.message)
        if not decided or (await parts.store.append(decided))[0] is not None:
            return json(CancelAnswer(order_id, "cancelled"), 202)
        events = await parts.history(order_id)
    raise refusal(409, "orderId", "not_open", f"order {order_id} kept changing while it was "
                  "cancelled; try again")
