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
from shared.accounts import Account
from shared.events import Cancelled
from shared.order import fold


async def cancel(request: Request, account: Account) -> Response:
    parts = parts_of(request)
    order_id, events = await events_of(request, account)
    state = fold(order_id, events)
    # A lost race with OrderOpened leaves the order open: try again from there.
    for _ in range(3):
        if state.state not in ("opening", "open"):
            break
        cancelled = Cancelled(order_id=order_id, seq=state.last_seq + 1, account=account.name)
        if (await parts.store.append([cancelled]))[0] is not None:
            return json(CancelAnswer(order_id, "cancelled"), 202)
        state = fold(order_id, await parts.history(order_id))
    if state.status == "cancelled":
        return json(CancelAnswer(order_id, "cancelled"), 202)
    started = " (it was triggered and is being routed)" if state.state == "triggered" else ""
    raise refusal(409, "orderId", "not_open", f"order {order_id} is {state.status}{started}; "
                  "only an open order can be cancelled")
