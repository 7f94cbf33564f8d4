"""What every process measures, in the Prometheus conventions: an ``oee_`` prefix, base
units (seconds), ``_total`` on counters (prometheus-client adds it).

Each process registers only what it observes, in the one default registry, so a process's
``/metrics`` shows its own story: the gateway its requests and subscribers, the router its
quotes and decisions, the executor its attempts, the persister the statuses it recorded.
Consumer groups' backlogs, the dead letters held and how far PostgreSQL is behind are facts
of Redis, not of a process: the gateway reports them (from Redis, once per scrape), so they
are not summed over processes.

deploy/alerts.yml and the Grafana dashboard query these names: a test holds them to it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# From a millisecond to a minute: stage latencies here span both.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)

# --- gateway ---------------------------------------------------------------------------
ORDERS_ACCEPTED = Counter("oee_orders_accepted", "Orders appended by this gateway.")
ORDERS_REJECTED = Counter("oee_orders_rejected",
                          "Submits and WebSocket messages refused, by the rule broken.", ["rule"])
WS_SUBSCRIBERS = Gauge("oee_ws_subscribers", "WebSocket subscribers connected now.")
STATUSES_SENT = Counter("oee_statuses_sent", "Status messages sent to WebSocket subscribers.")
DELIVERY = "oee_ws_delivery_seconds"
WS_DELIVERY = Histogram(DELIVERY,
                        "From an event's time to its status message sent to a subscriber.",
                        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                                 2.5))
TAIL_EVENTS = Counter("oee_tail_events", "Events read by the gateway's tail of the log, "
                      "which reads only while a WebSocket follows.")
GROUP_BACKLOG = Gauge("oee_group_backlog",
                      "Pending plus unread entries of a consumer group: what to scale it by.",
                      ["group"])
# Read from Redis at the scrape, like the backlog: they outlive any process's restart.
DEAD_LETTERS_HELD = Gauge("oee_dead_letters_held",
                          "Entries in the dead-letter streams now, over every partition: "
                          "nothing removes them but an operator.")
POSTGRES_BEHIND = Gauge("oee_postgres_behind_seconds",
                        "Age of the oldest log entry PostgreSQL has not recorded (the "
                        "persister group's oldest pending or unread entry); 0 when it has "
                        "them all.")
# Counted where the exception handlers answer, so a success costs nothing (accepted submits
# are oee_orders_accepted). Starlette's own 404 and 405, for a path or method the gateway
# does not have, are not among them.
HTTP_ERRORS = Counter("oee_http_errors",
                      "HTTP requests answered with a 4xx or 5xx by the gateway's exception "
                      "handlers, by status code.", ["code"])
# One series per account: accounts are few (an operator creates each with `oee keys create`).
RATE_LIMITED = Counter("oee_rate_limited",
                       "Submits refused because the account's per-minute allowance was spent.",
                       ["account"])

# --- every consumer --------------------------------------------------------------------
QUEUE_WAIT = Histogram("oee_queue_wait_seconds",
                       "From an event's append to its handling, per consumer group: once a "
                       "chunk, for its oldest event.", ["group"],
                       buckets=LATENCY_BUCKETS)
DEAD_LETTERS = Counter("oee_dead_letters", "Entries dead-lettered, per consumer group.",
                       ["group"])
BACKEND_ERRORS = Counter("oee_backend_errors", "Errors talking to Redis or PostgreSQL.",
                         ["backend"])

# --- router ----------------------------------------------------------------------------
QUOTE_SECONDS = Histogram("oee_quote_seconds", "Time to a venue's quote.", ["venue"],
                          buckets=LATENCY_BUCKETS)
ROUTING_SECONDS = Histogram("oee_routing_decision_seconds",
                            "Time to choose a route once both quotes are in.",
                            buckets=LATENCY_BUCKETS)
ROUTES = Counter("oee_routes", "Routing decisions, by route kind and venues.",
                 ["kind", "venues"])

# --- executor --------------------------------------------------------------------------
BUILD_SECONDS = Histogram("oee_build_seconds", "From Routed to Built.", buckets=LATENCY_BUCKETS)
CONFIRM_SECONDS = Histogram("oee_submit_to_confirm_seconds", "From Submitted to Confirmed.",
                            buckets=LATENCY_BUCKETS)
ATTEMPTS = Counter("oee_attempts", "Execution attempts, by outcome (landed, or the failure's "
                   "kind: transient, slippage, expired).", ["outcome"])

# --- persister -------------------------------------------------------------------------
STATUSES_REACHED = Counter("oee_statuses_reached", "Orders recorded reaching a status.",
                           ["status"])
ORDER_SECONDS = Histogram("oee_order_seconds",
                          "From OrderRequested (a waiting order: from its Triggered) to the "
                          "terminal event, by how it ended.",
                          ["status"], buckets=LATENCY_BUCKETS)


def serve_metrics(port: int, host: str) -> None:
    """A worker's /metrics on ``port`` (0: none), from a thread of its own."""
    if port:
        start_http_server(port, addr=host)
