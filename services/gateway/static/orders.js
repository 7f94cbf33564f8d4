// The orders the page knows: from GET /orders, from the live stream, and from its own
// submits, merged so that an order's status only ever moves forward. Two tables show them:
// the recent orders, and the open ones (limit and sniper orders waiting), with cancel.

import { routeOf } from "./charts.js";

// Rows of the projection carry no seq: a row's status is taken only when it is further on.
const RANK = {
  pending: 0, open: 1, routing: 2, building: 3, submitted: 4,
  confirmed: 5, failed: 5, cancelled: 5, expired: 5,
};
const SHOWN = 50;
// Routing counts cover every order seen since the page opened, up to this many (open
// orders are always kept).
const REMEMBERED = 5000;
// The statuses kept per order, for the timeline of the order this page submitted.
const STATUSES_KEPT = 12;

export class Orders {
  constructor() {
    this.byId = new Map();
    this.changed = new Set();
  }

  // A row of GET /orders or GET /orders/{id}: the projection, which may lag the stream.
  // GET /orders/{id} (not a list) carries ``attempts`` and a waiting order's condition.
  fromRow(row) {
    const known = this.byId.get(row.orderId);
    const detailed = Array.isArray(row.attempts) || Boolean(known?.detailed);
    if (known && RANK[known.status] > RANK[row.status]) {
      // Keep the newer status; take what the row knows and the stream does not say.
      this.byId.set(row.orderId, { ...row, ...withoutNulls(known), detailed });
    } else {
      this.byId.set(row.orderId,
        { ...known, ...withoutNulls(row), seq: known?.seq ?? 0, detailed });
    }
    this.touched(row.orderId);
  }

  // A status message; true when it was news.
  fromStatus(message) {
    const known = this.byId.get(message.orderId) || { orderId: message.orderId, seq: 0 };
    if (message.seq <= known.seq) return false;
    const order = { ...known, ...withoutNulls(message), seq: message.seq };
    order.createdAt ??= message.status === "pending" ? message.timestamp : undefined;
    order.updatedAt = message.timestamp;
    order.statuses = [...(known.statuses || []), message].slice(-STATUSES_KEPT);
    this.byId.set(message.orderId, order);
    this.touched(message.orderId);
    return true;
  }

  // What the submit form knew before the first status: the pair and the amount.
  describe(orderId, order) {
    const known = this.byId.get(orderId) || { orderId, seq: 0, status: "pending" };
    this.byId.set(orderId, { ...order, ...known });
    this.touched(orderId);
  }

  // An order known only from the stream lacks its pair; an open one, its condition.
  needsDetails(orderId) {
    const order = this.byId.get(orderId);
    if (order === undefined) return false;
    return order.tokenIn === undefined || (order.status === "open" && !order.detailed);
  }

  touched(orderId) {
    this.changed.add(orderId);
    if (this.byId.size > REMEMBERED) {
      const oldest = [...this.byId.keys()].filter((id) => this.byId.get(id).status !== "open")
        .sort().slice(0, this.byId.size - REMEMBERED);
      for (const id of oldest) this.byId.delete(id);
    }
  }

  // The orders waiting for their price or their pool, newest first.
  open() {
    return [...this.byId.values()].filter((order) => order.status === "open")
      .sort((a, b) => (a.orderId < b.orderId ? 1 : -1));
  }

  // Newest first: order ids are UUIDv7, so they sort by creation time.
  recent() {
    return [...this.byId.values()]
      .sort((a, b) => (a.orderId < b.orderId ? 1 : -1))
      .slice(0, SHOWN);
  }

  routeCounts() {
    const counts = new Map();
    for (const order of this.byId.values()) {
      if (order.routedDex) counts.set(order.routedDex, (counts.get(order.routedDex) || 0) + 1);
    }
    return counts;
  }

  takeChanged() {
    const changed = this.changed;
    this.changed = new Set();
    return changed;
  }
}

function withoutNulls(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== null && v !== undefined));
}

// Ids are UUIDv7: orders made together share their leading (time) digits, so the tail
// tells them apart.
export function shortId(id) {
  return id ? `…${id.slice(-8)}` : "";
}

export function shortSignature(signature) {
  return signature ? `${signature.slice(0, 8)}…` : "";
}

export function formatTime(timestamp) {
  if (!timestamp) return "";
  return new Date(timestamp).toLocaleTimeString([], { hour12: false });
}

export function formatPrice(price) {
  if (price === undefined || price === null) return "";
  return Number(price).toLocaleString(undefined, { maximumSignificantDigits: 7 });
}

export function routeLabel(routedDex) {
  return routedDex ? routeOf(routedDex).label : "";
}

function cell(text, className, titleText) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  if (titleText) td.title = titleText;
  return td;
}

export function statusBadge(status) {
  const badge = document.createElement("span");
  badge.className = `badge status-${status}`;
  badge.textContent = status;
  return badge;
}

// The order's id, as a button that opens its detail.
function opener(order) {
  const td = document.createElement("td");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "link mono";
  button.dataset.open = order.orderId;
  button.title = `Open order ${order.orderId}`;
  button.textContent = shortId(order.orderId);
  td.append(button);
  return td;
}

function statusCell(order) {
  const td = document.createElement("td");
  td.className = "status";
  if (order.status) td.append(statusBadge(order.status));
  return td;
}

function pairOf(order) {
  return order.tokenIn ? `${order.tokenIn} → ${shortToken(order.tokenOut)}` : "";
}

// A sniper's tokenOut may be a mint of 32-44 characters: its ends tell it apart.
export function shortToken(token) {
  return token && token.length > 12 ? `${token.slice(0, 4)}…${token.slice(-4)}` : token ?? "";
}

function row(order, changed) {
  const tr = document.createElement("tr");
  tr.dataset.orderId = order.orderId;
  tr.dataset.status = order.status || "";
  tr.dataset.seq = order.seq ?? 0;
  if (changed.has(order.orderId)) tr.className = "flash";
  return tr;
}

export function renderTable(tbody, orders, changed) {
  const rows = orders.map((order) => {
    const tr = row(order, changed);
    const out = order.amountOut ? `${order.amountOut} ${shortToken(order.tokenOut)}` : "";
    tr.append(
      cell(formatTime(order.createdAt || order.updatedAt), "muted nowrap"),
      opener(order),
      cell(order.type, "muted"),
      cell(pairOf(order), "nowrap", order.tokenOut),
      cell(order.amount, "num"),
      statusCell(order),
      cell(routeLabel(order.routedDex), "nowrap route", order.routedDex),
      cell(formatPrice(order.executedPrice), "num"),
      cell(out, "num nowrap"),
      cell(shortSignature(order.txHash), "mono signature", order.txHash),
      cell(order.error, "error", order.error),
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
}

// What an open order waits for, in the words of its type.
export function condition(order) {
  if (order.type === "limit") {
    return `≥ ${order.limitPrice} ${shortToken(order.tokenOut)} per ${order.tokenIn}`;
  }
  return order.maxPrice ? `its launch, ≤ ${order.maxPrice} ${order.tokenIn} each` : "its launch";
}

// The condition, and under it the deadline.
function waitsFor(order) {
  const td = cell(order.detailed ? condition(order) : "…", "condition");
  if (order.detailed) {
    const deadline = document.createElement("span");
    deadline.className = "deadline muted";
    deadline.textContent = order.expiresAt ? `until ${formatWhen(order.expiresAt)}`
      : "no deadline";
    if (order.expiresAt) deadline.title = order.expiresAt;
    td.append(deadline);
  }
  return td;
}

// ``cancelling``: the ids whose cancel is under way, their buttons disabled.
export function renderOpen(tbody, orders, changed, cancelling) {
  const rows = orders.map((order) => {
    const tr = row(order, changed);
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel";
    cancel.dataset.cancel = order.orderId;
    cancel.disabled = cancelling.has(order.orderId);
    cancel.textContent = cancel.disabled ? "Cancelling…" : "Cancel";
    cancel.setAttribute("aria-label", `Cancel order ${order.orderId}`);
    const action = document.createElement("td");
    action.className = "action";
    action.append(cancel);
    // The type under the id: the table fits the narrow column it has.
    const id = opener(order);
    const type = document.createElement("span");
    type.className = "type muted";
    type.textContent = order.type ?? "";
    id.append(type);
    tr.append(
      id,
      cell(pairOf(order), "nowrap", order.tokenOut),
      cell(order.amount, "num"),
      waitsFor(order),
      action,
    );
    return tr;
  });
  tbody.replaceChildren(...rows);
}

// A time today as a time, another day's with its date.
export function formatWhen(timestamp) {
  const at = new Date(timestamp);
  if (at.toDateString() === new Date().toDateString()) return formatTime(timestamp);
  return at.toLocaleString([], { hour12: false, dateStyle: "short", timeStyle: "short" });
}
