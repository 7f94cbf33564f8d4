// An order opened whole: its summary (GET /orders/{id}), and from its events (GET
// /orders/{id}/events) the timeline, every route considered with the reason one won, each
// attempt, the signature and why it failed.

import { getJson } from "./api.js";
import { formatPrice, shortId, shortSignature, shortToken, statusBadge } from "./orders.js";

const VENUE = { raydium: "Raydium", meteora: "Meteora" };
const venue = (dex) => VENUE[dex] || dex;

function element(name, attributes = {}, ...children) {
  const node = document.createElement(name);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

export function preciseTime(timestamp) {
  const at = new Date(timestamp);
  const ms = String(at.getMilliseconds()).padStart(3, "0");
  return `${at.toLocaleTimeString([], { hour12: false })}.${ms}`;
}

// A candidate route as people read it, after ``Candidate.describe`` in the engine.
export function describe(candidate) {
  const hops = candidate.hops.map((hop) => [...new Set(hop.map((share) => venue(share.dex)))]);
  if (candidate.kind === "split") {
    return "split " + candidate.hops[0].map((s) => `${s.bps / 100}% ${venue(s.dex)}`).join(", ");
  }
  if (candidate.kind === "two_hop") {
    return `${candidate.path.join(" → ")} via ${hops.map((h) => h.join(" + ")).join(" → ")}`;
  }
  return `${hops[0].join(" + ")} direct`;
}

const sameRoute = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function percent(fraction) {
  return `${(fraction * 100).toLocaleString(undefined, { maximumFractionDigits: 3 })}%`;
}

// --- the timeline -----------------------------------------------------------------------

function note(event, order, tokens) {
  switch (event.type) {
    case "OrderRequested": {
      const bound = event.limitPrice ? `, limit ${event.limitPrice}`
        : event.maxPrice ? `, at most ${event.maxPrice}` : "";
      return `${event.orderType} ${event.amount} ${event.tokenIn} → ${shortToken(event.tokenOut)}`
        + `, slippage ${percent(event.slippage)}${bound}`;
    }
    case "OrderOpened": return "waiting, watched by the trigger";
    case "Triggered": return `${event.reason} (price ${formatPrice(event.price)})`;
    case "Reopened": return event.reason;
    case "Cancelled": return event.account ? `by ${event.account}` : "";
    case "Expired": return `its deadline ${preciseTime(event.expiresAt)} passed`;
    case "Routed":
    case "Rerouted":
      return `${describe(event.route)}: ${tokens.units(order.tokenOut, event.amountOut)} `
        + `${shortToken(order.tokenOut)} quoted`;
    case "Built":
      return `${event.instructions.length} instructions`
        + (event.wrapsSol ? ", wraps SOL" : "") + (event.unwrapsSol ? ", unwraps SOL" : "");
    case "Submitted": return `attempt ${event.attempt}: ${shortSignature(event.txHash)}`;
    case "AttemptFailed": return `attempt ${event.attempt} (${event.kind}): ${event.error}`;
    case "Confirmed":
      return `${tokens.units(order.tokenOut, event.amountOut)} ${shortToken(order.tokenOut)} `
        + `at ${formatPrice(event.executedPrice)}`;
    case "Failed": return `${event.reason}: ${event.error}`;
    default: return "";
  }
}

function timeline(events, order, tokens) {
  const first = events.length ? new Date(events[0].at).getTime() : 0;
  return events.map((event) => {
    const delta = (new Date(event.at).getTime() - first) / 1000;
    return element("li", { "data-type": event.type, "data-seq": event.seq },
      element("span", { class: "seq", text: event.seq }),
      element("span", { class: "etype", text: event.type }),
      element("time", { datetime: event.at, text: preciseTime(event.at) }),
      element("span", { class: "delta", text: `+${delta.toFixed(3)} s` }),
      element("span", { class: "note", text: note(event, order, tokens) }));
  });
}

// --- the route ----------------------------------------------------------------------------

function quotes(event) {
  return element("ul", { class: "quotes" }, ...event.quotes.map((quote) => element("li",
    { "data-dex": quote.dex },
    element("strong", { text: venue(quote.dex) }),
    ` ${quote.pools} pool${quote.pools === 1 ? "" : "s"} in ${quote.latencyMs.toFixed(0)} ms`)));
}

function candidates(event, order, tokens) {
  const rows = event.candidates.map((candidate, index) => {
    const chosen = sameRoute(candidate, event.route);
    return element("tr", chosen ? { class: "chosen", "data-chosen": "true" } : {},
      element("td", { class: "num muted", text: index + 1 }),
      element("td", { text: describe(candidate) }),
      element("td", { class: "muted", text: candidate.kind.replace("_", " ") }),
      element("td", { class: "num", text: tokens.units(order.tokenOut, candidate.amountOut) }),
      element("td", { class: "num", text: percent(candidate.priceImpact) }),
      element("td", { class: "won", text: chosen ? "chosen" : "" }));
  });
  return element("table", { class: "candidates" },
    element("thead", {}, element("tr", {},
      element("th", { class: "num", text: "#" }), element("th", { text: "Route" }),
      element("th", { text: "Kind" }),
      element("th", { class: "num", text: `Out (${shortToken(order.tokenOut)})` }),
      element("th", { class: "num", text: "Impact" }), element("th", {}))),
    element("tbody", {}, ...rows));
}

function routes(events, order, tokens) {
  const routed = events.filter((e) => e.type === "Routed" || e.type === "Rerouted");
  if (!routed.length) return [element("p", { class: "empty", text: "Not routed." })];
  return routed.map((event) => element("div", { class: "routing", "data-seq": event.seq },
    element("h4", { text: `${event.type} at seq ${event.seq}: ${describe(event.route)}` }),
    element("p", { class: "reason", text: event.reason }),
    quotes(event),
    candidates(event, order, tokens)));
}

// --- the attempts -------------------------------------------------------------------------

function retry(failed) {
  if (!failed.retryable) return "no: the last attempt";
  if (failed.kind !== "transient") return "after a new route";
  return failed.retryInMs === null || failed.retryInMs === undefined
    ? "yes" : `in ${Math.round(failed.retryInMs)} ms`;
}

function attempts(events) {
  const byAttempt = new Map();
  const of = (n) => byAttempt.get(n) || byAttempt.set(n, { attempt: n }).get(n);
  for (const event of events) {
    if (event.type === "Submitted") of(event.attempt).txHash = event.txHash;
    if (event.type === "AttemptFailed") of(event.attempt).failed = event;
    if (event.type === "Confirmed") of(event.attempt).confirmed = true;
  }
  if (!byAttempt.size) return element("p", { class: "empty", text: "No attempt yet." });
  const rows = [...byAttempt.values()].sort((a, b) => a.attempt - b.attempt).map((a) => {
    const outcome = a.failed ? a.failed.kind : a.confirmed ? "confirmed" : "in flight";
    return element("tr", { "data-attempt": a.attempt, "data-outcome": outcome },
      element("td", { class: "num", text: a.attempt }),
      element("td", { class: "mono", text: a.txHash || "", title: a.txHash || "" }),
      element("td", { text: outcome }),
      element("td", { class: "error", text: a.failed?.error || "" }),
      element("td", { text: a.failed ? retry(a.failed) : "" }));
  });
  return element("table", { class: "attempts" },
    element("thead", {}, element("tr", {},
      element("th", { class: "num", text: "Attempt" }), element("th", { text: "Signature" }),
      element("th", { text: "Outcome" }), element("th", { text: "Error" }),
      element("th", { text: "Retry" }))),
    element("tbody", {}, ...rows));
}

// --- the summary ------------------------------------------------------------------------

function summary(order, events) {
  const failed = events.find((e) => e.type === "Failed");
  const pairs = [
    ["Type", order.type],
    ["Pair", `${order.tokenIn} → ${order.tokenOut}`],
    ["Amount", `${order.amount} ${order.tokenIn}`],
    ["Slippage", order.slippage === null ? "" : percent(order.slippage)],
    ["Limit price", order.limitPrice],
    ["Max price", order.maxPrice],
    ["Expires", order.expiresAt && preciseTime(order.expiresAt)],
    ["Received", order.amountOut && `${order.amountOut} ${shortToken(order.tokenOut)}`],
    ["Price", order.executedPrice && formatPrice(order.executedPrice)],
    ["Account", order.account],
  ];
  const items = pairs.filter(([, value]) => value).flatMap(([name, value]) => [
    element("dt", { text: name }), element("dd", { text: value })]);
  items.push(element("dt", { class: "wide", text: "Signature" }), element("dd",
    { id: "detail-signature", class: "wide mono", text: order.txHash || "none yet" }));
  if (failed || order.error) {
    items.push(element("dt", { class: "wide", text: "Failure" }), element("dd", {
      id: "detail-failure", class: "wide error",
      text: failed ? `${failed.reason}: ${failed.error}` : order.error }));
  }
  return items;
}

// --- the dialog -------------------------------------------------------------------------

export class Detail {
  constructor(dialog, tokens) {
    this.dialog = dialog;
    this.tokens = tokens;
    this.orderId = null;
    this.loading = null;
    this.again = false;
  }

  async open(orderId) {
    this.orderId = orderId;
    const $ = (selector) => this.dialog.querySelector(selector);
    $(".detail-id").textContent = shortId(orderId);
    $(".detail-id").title = orderId;
    for (const part of [".detail-summary", ".detail-timeline", ".detail-route",
      ".detail-attempts", ".detail-status"]) $(part).replaceChildren();
    $(".problem").textContent = "";
    if (!this.dialog.open) this.dialog.showModal();
    await this.refresh();
  }

  close() {
    this.orderId = null;
    if (this.dialog.open) this.dialog.close();
  }

  // Read the order again; a call while one is under way runs once it is done.
  async refresh() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.loading = this.load().finally(() => { this.loading = null; });
    await this.loading;
    if (this.again) {
      this.again = false;
      await this.refresh();
    }
  }

  async load() {
    const orderId = this.orderId;
    if (!orderId) return;
    const $ = (selector) => this.dialog.querySelector(selector);
    const path = `/orders/${encodeURIComponent(orderId)}`;
    let order;
    let events;
    try {
      [order, { events }] = await Promise.all([getJson(path), getJson(`${path}/events`)]);
    } catch (problem) {
      $(".problem").textContent = problem.message;
      return;
    }
    if (orderId !== this.orderId) return;
    this.dialog.dataset.status = order.status;
    $(".detail-status").replaceChildren(statusBadge(order.status));
    $(".detail-summary").replaceChildren(...summary(order, events));
    $(".detail-timeline").replaceChildren(...timeline(events, order, this.tokens));
    $(".detail-route").replaceChildren(...routes(events, order, this.tokens));
    $(".detail-attempts").replaceChildren(attempts(events));
  }
}
