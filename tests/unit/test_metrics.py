"""The gateway's /metrics parse as Prometheus text, with the names the conventions ask for."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from services.gateway.metrics import Readings, Scrape
from shared.metrics import ORDERS_REJECTED, WS_DELIVERY


def families(text: bytes) -> dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    found: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for family in text_string_to_metric_families(text.decode()):
        found[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value
                              for s in family.samples}
    return found


def test_the_scrape_parses_and_reports_every_group_and_the_tail() -> None:
    scrape = Scrape()
    ORDERS_REJECTED.labels("distinct_tokens").inc()
    WS_DELIVERY.observe(0.003)
    first = families(scrape.render(10, Readings({"router": 3, "persister": 0}, 2, 4.5)))
    second = families(scrape.render(25, Readings({"router": 1, "persister": 0}, 3, 0.25)))
    assert second["oee_tail_events"][("oee_tail_events_total", ())] == (
        first["oee_tail_events"][("oee_tail_events_total", ())] + 15)
    assert second["oee_group_backlog"][("oee_group_backlog", (("group", "router"),))] == 1
    assert second["oee_dead_letters_held"][("oee_dead_letters_held", ())] == 3
    assert second["oee_postgres_behind_seconds"][("oee_postgres_behind_seconds", ())] == 0.25
    # Redis away: the figures last read stay.
    third = families(scrape.render(25, None))
    assert third["oee_dead_letters_held"][("oee_dead_letters_held", ())] == 3
    assert second["oee_orders_rejected"][
        ("oee_orders_rejected_total", (("rule", "distinct_tokens"),))] >= 1
    delivery = second["oee_ws_delivery_seconds"]
    assert delivery[("oee_ws_delivery_seconds_bucket", (("le", "0.005"),))] >= 1
    for name in second:
        assert name.startswith(("oee_", "process_", "python_")), name
