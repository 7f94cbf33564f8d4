"""oee_rate_limited_total{account}: a submit refused for a spent allowance counts once for its
account, against a real Redis; admitted submits and other accounts' count nothing."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.gateway.limits import Limits
from shared.stream import EventStore
from tests.unit import builders


def refused(account: str) -> float:
    return REGISTRY.get_sample_value("oee_rate_limited_total", {"account": account}) or 0.0


async def test_each_refusal_for_the_rate_counts_for_its_account(store: EventStore) -> None:
    # Account names of this test's own: the counters are the process's.
    greedy, modest = f"greedy-{store.settings.namespace}", f"modest-{store.settings.namespace}"
    limits = Limits(store, 3, 1000, 3600)
    admissions = [await limits.admit(greedy, f"order-{i}") for i in range(5)]
    assert [a.rate.allowed for a in admissions] == [True] * 3 + [False] * 2
    assert refused(greedy) == 2
    assert (await limits.admit(modest, "order-m")).admitted
    assert refused(modest) == 0


async def test_a_refusal_for_too_many_unfinished_orders_is_not_a_rate_limit(
        store: EventStore) -> None:
    account = f"busy-{store.settings.namespace}"
    limits = Limits(store, 100, 1, 3600)
    await store.append([builders.requested("order-1")])  # accepted, not finished
    assert (await limits.admit(account, "order-1")).admitted
    full = await limits.admit(account, "order-2")
    assert full.rate.allowed and not full.open_orders_ok
    assert refused(account) == 0
