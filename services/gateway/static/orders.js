// The orders the page knows: from GET /orders, from the live stream, and from its own
// submits, merged so that an order's status only ever moves forward.

import { routeOf } from "./charts.js";

const RANK = { pending: 0, routing: 1, building: 2, submitted: 3, confirmed: 4, failed: 4 };
const SHOWN = 50;
// Routing counts cover every order seen since the page opened, up to this many.
const REMEMBERED = 5000;

export class Orders {
  constructor() {
    this.byId = new Map();
    this.changed = new Set();
  }

  // A row of GET /orders or GET /orders/{id}: the projection, which may lag the stream.
  fromRow(row) {
    const known = this.byId.get(row.orderId);
    if (known && RANK[known.status] > RANK[row.status]) {
      // Keep the newer status; take what the row knows and the stream does not say.
      this.byId.set(row.orderId, { ...row, ...withoutNulls(known) });
    } else {
      this.byId.set(row.orderId, { ...known, ...withoutNulls(row), seq: known?.seq ?? 0 });
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

  needsDetails(orderId) {
    const order = this.byId.get(orderId);
    return order !== undefined && order.tokenIn === undefined;
  }

  touched(orderId) {
    this.changed.add(orderId);
    if (this.byId.size > REMEMBERED) {
      const oldest = [...this.byId.keys()].sort().slice(0, this.byId.size - REMEMBERED);
      for (const id of oldest) this.byId.delete(id);
    }
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

export function renderTable(tbody, orders, changed) {
  const rows = orders.map((order) => {
    const tr = document.createElement("tr");
    tr.dataset.orderId = order.orderId;
    tr.dataset.status = order.status || "";
    tr.dataset.seq = order.seq ?? 0;
    if (changed.has(order.orderId)) tr.className = "flash";
    const status = document.createElement("td");
    status.className = "status";
    if (order.status) status.append(statusBadge(order.status));
    const pair = order.tokenIn ? `${order.tokenIn} → ${order.tokenOut}` : "";
    const out = order.amountOut ? `${order.amountOut} ${order.tokenOut ?? ""}` : "";
    tr.append(
      cell(formatTime(order.createdAt || order.updatedAt), "muted nowrap"),
      cell(shortId(order.orderId), "mono", order.orderId),
      cell(pair, "nowrap"),
      cell(order.amount, "num"),
      status,
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
