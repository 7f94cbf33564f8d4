// The gateway's API as the page uses it: the key, HTTP requests, and the one WebSocket.
// A browser cannot set headers on a WebSocket, so the key goes in a first auth message.

const KEY_ITEM = "oee.apiKey";

export const auth = {
  // Kept for this tab only: sessionStorage dies with the tab, and never leaves the page.
  get key() { return sessionStorage.getItem(KEY_ITEM); },
  set key(value) {
    if (value) sessionStorage.setItem(KEY_ITEM, value);
    else sessionStorage.removeItem(KEY_ITEM);
  },
  // A key is stored only once the gateway asked for one: keys are on whenever we hold one.
  get required() { return this.key !== null; },
};

export class Unauthorized extends Error {}

// An answer that is not 2xx: ``error`` is the API's { field, rule, message } when it sent one.
export class Refused extends Error {
  constructor(path, status, error) {
    super(error?.message || `${path}: HTTP ${status}`);
    this.status = status;
    this.error = error || null;
  }
}

export async function getJson(path, key = auth.key) {
  const { status, body } = await request("GET", path, undefined, {}, key);
  if (status >= 300) throw new Refused(path, status, body?.error);
  return body;
}

export async function getText(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.text();
}

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

function openSocket(path, onMessage, onClose) {
  const ws = new WebSocket(wsUrl(path));
  ws.onopen = () => {
    if (auth.required) ws.send(JSON.stringify({ type: "auth", apiKey: auth.key }));
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = (event) => onClose(event.code);
  return ws;
}

function randomId() {
  // crypto.randomUUID exists only on https or localhost; getRandomValues everywhere.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Answers { status, body }; a refusal's body is the API's { error: { field, rule, message } }.
// A refused key throws Unauthorized: every caller answers it the same way.
async function request(method, path, body, headers, key = auth.key) {
  const all = { ...headers };
  if (key) all["x-api-key"] = key;
  if (body !== undefined) all["content-type"] = "application/json";
  const response = await fetch(path, {
    method, headers: all, cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new Unauthorized("the gateway refused the key");
  const text = await response.text();
  try {
    return { status: response.status, body: text ? JSON.parse(text) : null };
  } catch {
    return { status: response.status, body: null };
  }
}

// Submit over HTTP: the page follows every order of the account on its one WebSocket
// (the Feed), so a submit needs no connection of its own.
export function submitOrder(order) {
  return request("POST", "/orders/execute", order, { "Idempotency-Key": randomId() });
}

export function cancelOrder(orderId) {
  return request("DELETE", `/orders/${encodeURIComponent(orderId)}`, undefined, {});
}

// Every status of every order the key may see, live, for as long as the page is open.
// After a drop it reconnects with ?after=<last position>: the gateway resends what was
// missed, so nothing is lost and nothing comes twice.
export class Feed {
  constructor({ status, state, refused }) {
    this.handlers = { status, state, refused };
    this.position = null;
    this.retryMs = 500;
    this.ws = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000);
  }

  connect() {
    const after = this.position ? `?after=${encodeURIComponent(this.position)}` : "";
    this.handlers.state(this.position ? "reconnecting" : "connecting");
    let refused = false;
    this.ws = openSocket(`/orders/stream${after}`, (message) => {
      // A refusal is { error: {...} } alone; a failed order's status carries an error too.
      if (message.orderId === undefined && message.error) {
        refused = true;
        this.handlers.refused(message.error);
        return;
      }
      this.retryMs = 500;
      if (message.position) this.position = message.position;
      this.handlers.status(message);
    }, () => {
      if (this.stopped || refused) { this.handlers.state("offline"); return; }
      this.handlers.state("reconnecting");
      setTimeout(() => { if (!this.stopped) this.connect(); }, this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 5000);
    });
    this.ws.addEventListener("open", () => this.handlers.state("live"));
  }
}
