// The gateway's API as the page uses it: the key, HTTP reads, and the two WebSockets.
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

export async function getJson(path, key = auth.key) {
  const headers = key ? { "x-api-key": key } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  if (response.status === 401) throw new Unauthorized("the gateway refused the key");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
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

function openSocket(path, onMessage, onClose, firstMessages = []) {
  const ws = new WebSocket(wsUrl(path));
  ws.onopen = () => {
    if (auth.required) ws.send(JSON.stringify({ type: "auth", apiKey: auth.key }));
    for (const message of firstMessages) ws.send(JSON.stringify(message));
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

// Submit ``order`` and follow it on the same socket. ``handlers``: status(message),
// refused(error), closed(code). A gateway going away (1001) is followed elsewhere with
// ?orderId=: the history comes again, and seq drops what was seen.
export function submitOrder(order, handlers) {
  const body = { ...order, idempotencyKey: randomId() };
  let orderId = null;
  let lastSeq = 0;
  let terminal = false;
  const onMessage = (message) => {
    if (message.error) { handlers.refused(message.error); return; }
    orderId = message.orderId;
    if (message.seq <= lastSeq) return;
    lastSeq = message.seq;
    terminal = message.status === "confirmed" || message.status === "failed";
    handlers.status(message);
  };
  const onClose = (code) => {
    if (code === 1001 && orderId && !terminal) {
      openSocket(`/orders/execute?orderId=${encodeURIComponent(orderId)}`, onMessage, onClose);
      return;
    }
    handlers.closed(code);
  };
  openSocket("/orders/execute", onMessage, onClose, [body]);
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
      if (message.error) {
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
