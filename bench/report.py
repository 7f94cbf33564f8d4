"""What a run of ``oee bench`` reports: its figures, as JSON (``Result``) or as a table
(``render``), and the counters they come from."""

from __future__ import annotations

from pathlib import Path

import msgspec

from bench.cpu import Snapshot


class Sample(msgspec.Struct):
    """The system at one moment of the run."""

    at_s: float
    # Per group: entries pending or not yet read.
    backlog: dict[str, int]
    redis_used_mb: float
    gateway_rss_mb: float | None


class Result(msgspec.Struct):
    accepted: int
    confirmed: int
    failed: int
    refused: int
    seconds: float
    orders_per_s: float
    end_to_end_ms: dict[str, float]
    overhead_ms: dict[str, float]
    stages_ms: dict[str, dict[str, float]]
    projected_in_postgres_s: float | None
    pending_entries: dict[str, int]
    # With --ws: from an event's time to its status message reaching the client.
    ws_delivery_ms: dict[str, float] = msgspec.field(default_factory=dict)
    ws_subscribers_peak: int = 0
    # The gateway's own view (its /metrics histogram, over the run): share of statuses
    # sent within each bound, in ms.
    gateway_sent_within_ms: dict[str, float] = msgspec.field(default_factory=dict)
    gateway_rss_mb: float | None = None
    samples: list[Sample] = msgspec.field(default_factory=list)
    order_type: str = "market"
    cancelled: int = 0
    expired: int = 0
    # Sniper runs: from the launch's PoolLaunched to each sniper's (first) Submitted.
    launch_to_submitted_ms: dict[str, float] = msgspec.field(default_factory=dict)
    # From the first submit until every order was projected: CPU ms per accepted order of
    # each kind of process (the services only when --spawn started them; redis and
    # postgres server-wide), the load generator (this process) apart.
    cpu_ms_per_order: dict[str, float] = msgspec.field(default_factory=dict)
    # Every command Redis ran in the window (scripts' inner ones too, and the bench's own
    # reads of the log), per accepted order.
    redis_commands_per_order: float | None = None
    # The read and write system calls of each kind of process that --spawn started, per
    # accepted order: a service's socket reads and writes, so its round trips and wakes.
    syscalls_per_order: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)
    # PostgreSQL's own counters for the database under test over the window (the bench's
    # few reads too), per accepted order: transactions committed or rolled back, and rows
    # inserted, updated or deleted. None unless --spawn: read before
    # the system starts and once it has stopped, so over the whole run, warm-up included.
    postgres_transactions_per_order: float | None = None
    postgres_rows_written_per_order: float | None = None
    # Market orders with simulated delays: their summed simulated delays over their summed
    # end-to-end times. A closed loop's slot takes an order's end to end each time, so this
    # is the rate the engine allows against the rate the run's own draws would allow with
    # no engine at all (free of the tail, where fewer orders than the loop's are left).
    ideal_rate_share: float | None = None
    # CPU seconds of the engine, Redis and PostgreSQL (what cpu_ms_per_order has but the
    # generator) over the window's wall seconds: how many cores the system kept busy.
    cores_busy: float | None = None


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 2),
            "mean": round(sum(ordered) / len(ordered), 2)}


def redis_cpu_s(before: Snapshot, after: Snapshot) -> float:
    """CPU seconds every primary used between the snapshots."""
    return sum(max(0.0, node.cpu_s - before.nodes[name].cpu_s)
               for name, node in after.nodes.items())


def redis_commands(before: Snapshot, after: Snapshot) -> float:
    """Commands every primary ran between the snapshots."""
    return sum(max(0.0, calls - before.nodes[name].calls.get(command, 0.0))
               for name, node in after.nodes.items() for command, calls in node.calls.items())


def sent_within(before: dict[str, int], after: dict[str, int]) -> dict[str, float]:
    """Share of the statuses sent during the run within each bound (ms -> fraction)."""
    total = after.get("+Inf", 0) - before.get("+Inf", 0)
    if total <= 0:
        return {}
    return {("inf" if bound == "+Inf" else f"{float(bound) * 1000:g}"):
            round((count - before.get(bound, 0)) / total, 4) for bound, count in after.items()}


def render(result: Result) -> str:
    lines = [
        f"{result.order_type} orders: accepted {result.accepted}  confirmed "
        f"{result.confirmed}  failed {result.failed}  cancelled {result.cancelled}  "
        f"expired {result.expired}  refused {result.refused}",
        f"throughput {result.orders_per_s} orders/s over {result.seconds} s "
        f"(all projected in PostgreSQL after {result.projected_in_postgres_s} s)",
        "latency (ms)            p50      p95      p99      max",
    ]

    def row(name: str, p: dict[str, float]) -> str:
        if not p:
            return f"  {name:<18} (none)"
        return f"  {name:<18}{p['p50']:>8}{p['p95']:>9}{p['p99']:>9}{p['max']:>9}"

    lines.append(row("end to end", result.end_to_end_ms))
    if result.launch_to_submitted_ms:
        lines.append(row("launch to submitted", result.launch_to_submitted_ms))
    lines.append(row("engine overhead", result.overhead_ms))
    if result.ideal_rate_share is not None:
        lines.append(f"the rate the simulated delays allow, reached: "
                     f"{result.ideal_rate_share:.2%} (their sum over the end-to-end sum)")
    for name, values in result.stages_ms.items():
        lines.append(row(f"stage {name}", values))
    if result.ws_delivery_ms:
        lines.append(row("ws delivery", result.ws_delivery_ms))
        lines.append(f"WebSocket subscribers at the peak: {result.ws_subscribers_peak}")
        shares = result.gateway_sent_within_ms
        if shares:
            lines.append("gateway-side, statuses sent within (event time to send): "
                         + ", ".join(f"{ms} ms {share:.2%}" for ms, share in shares.items()
                                     if ms in ("10", "25", "50", "100", "250")))
    if result.gateway_rss_mb is not None:
        lines.append(f"gateway RSS at the end: {result.gateway_rss_mb} MB")
    if result.cpu_ms_per_order:
        lines.append("CPU ms per order: " + ", ".join(
            f"{kind} {ms}" for kind, ms in result.cpu_ms_per_order.items())
            + f"; Redis commands per order: {result.redis_commands_per_order}")
    if result.syscalls_per_order:
        lines.append("system calls per order (reads/writes): " + ", ".join(
            f"{kind} {calls['reads']}/{calls['writes']}"
            for kind, calls in result.syscalls_per_order.items()))
    if result.postgres_transactions_per_order is not None:
        lines.append(f"PostgreSQL per order: {result.postgres_transactions_per_order}"
                     f" transactions, {result.postgres_rows_written_per_order} rows written")
    if result.cores_busy is not None:
        lines.append(f"cores busy (engine, Redis, PostgreSQL): {result.cores_busy}")
    lines.append("pending entries per group at the end: "
                 + ", ".join(f"{g} {n}" for g, n in sorted(result.pending_entries.items())))
    if result.samples:
        lines.append("during the run (s: backlog per group | Redis used MB | gateway RSS MB):")
        step = max(1, len(result.samples) // 12)
        shown = result.samples[::step]
        if shown[-1] is not result.samples[-1]:
            shown.append(result.samples[-1])
        for sample in shown:
            backlog = " ".join(f"{g} {n}" for g, n in sorted(sample.backlog.items()))
            lines.append(f"  {sample.at_s:>7}: {backlog} | {sample.redis_used_mb}"
                         f" | {sample.gateway_rss_mb}")
    return "\n".join(lines)


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None
