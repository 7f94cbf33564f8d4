"""What the fuzzer is told about cancels (tests/e2e/schemathesis_hooks.py): a read of an
order after DELETE is no use after free only when the order reads as cancelled."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from schemathesis.openapi.checks import UseAfterFree

from tests.e2e.schemathesis_hooks import filter_failure

ORDER_ID = "01a21435-0000-7000-8000-000000000000"


def use_after_free() -> UseAfterFree:
    return UseAfterFree(operation="DELETE /orders/{order_id}", message="still there",
                        free=f"DELETE /orders/{ORDER_ID}", usage=f"GET /orders/{ORDER_ID}")


def answer(body: Any) -> Any:
    def json() -> Any:
        if isinstance(body, Exception):
            raise body
        return body
    return SimpleNamespace(json=json)


@pytest.mark.parametrize(("body", "kept"), [
    ({"orderId": ORDER_ID, "status": "cancelled"}, False),
    ({"orderId": ORDER_ID, "events": [{"type": "OrderRequested"}, {"type": "Cancelled"}]},
     False),
    # A cancel answered 202 that did not cancel is still a failure.
    ({"orderId": ORDER_ID, "status": "open"}, True),
    ({"orderId": ORDER_ID, "events": [{"type": "OrderRequested"}]}, True),
    (ValueError("not JSON"), True),
    (["cancelled"], True),
])
def test_only_a_read_that_shows_the_cancel_is_forgiven(body: Any, kept: bool) -> None:
    assert filter_failure(None, use_after_free(), None, answer(body)) is kept


def test_every_other_failure_is_kept() -> None:
    other = SimpleNamespace()  # any other Failure
    assert filter_failure(None, other, None, answer({"status": "cancelled"})) is True
