// The dashboard: asks for a key when the gateway wants one, then shows the account's
// orders live, submits orders and follows them, and polls /metrics.

import { Feed, Unauthorized, auth, getJson, getText, submitOrder } from "./api.js";
import { drawBacklog, drawRoutes, drawSparkline } from "./charts.js";
import { Orders, formatPrice, formatTime, renderTable, routeLabel, shortId,
  shortSignature, statusBadge } from "./orders.js";
import { Rates, backlog, parse, total } from "./prometheus.js";

const TOKENS = ["SOL", "USDC", "USDT", "BONK", "JUP", "RAY"];
const METRICS_EVERY_MS = 2000;
const SPARK_POINTS = 60;

const $ = (id) => document.getElementById(id);
const orders = new Orders();
let feed = null;
let metricsTimer = null;

// --- drawing, at most once a frame ---------------------------------------------------

let drawPending = false;
function redraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    renderTable($("orders-body"), orders.recent(), orders.takeChanged());
    $("orders-empty").hidden = orders.byId.size > 0;
    drawRoutes($("routes-chart"), orders.routeCounts());
  });
}
window.addEventListener("resize", redraw);

function setFeedState(state) {
  const pill = $("feed-state");
  pill.dataset.state = state;
  pill.textContent = state;
}

// --- the key ---------------------------------------------------------------------------

function askForKey(reason) {
  stop();
  auth.key = null;
  $("key-error").textContent = reason || "";
  $("key-input").value = "";
  const dialog = $("key-dialog");
  if (!dialog.open) dialog.showModal();
  $("key-input").focus();
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = $("key-input").value.trim();
  if (!key) return;
  try {
    const page = await getJson("/orders?limit=50", key);
    auth.key = key;
    $("key-dialog").close();
    start(page);
  } catch (problem) {
    $("key-error").textContent = problem instanceof Unauthorized
      ? "The gateway refused this key: check it, or ask for a new one."
      : `Could not check the key: ${problem.message}`;
  }
});

$("key-dialog").addEventListener("cancel", (event) => event.preventDefault());

$("forget-key").addEventListener("click", () => askForKey("Key forgotten in this tab."));

function showKey() {
  const key = auth.key;
  // The id part of oee_<id>_<secret> names the key without revealing it.
  $("key-name").textContent = key ? `key ${key.split("_").slice(0, 2).join("_")}` : "keys off";
  $("forget-key").hidden = !key;
}

// --- live orders -------------------------------------------------------------------------

const detailsQueue = [];
let detailsInFlight = 0;

// An order first seen on the stream: fetch its pair and amount, a few at a time, and skip
// the details rather than fall behind when orders arrive by the hundred.
function fetchDetails(orderId) {
  if (detailsQueue.length > 20) return;
  detailsQueue.push(orderId);
  pumpDetails();
}

function pumpDetails() {
  while (detailsInFlight < 4 && detailsQueue.length) {
    const orderId = detailsQueue.shift();
    detailsInFlight += 1;
    getJson(`/orders/${encodeURIComponent(orderId)}`)
      .then((row) => { orders.fromRow(row); redraw(); })
      .catch(() => {})
      .finally(() => { detailsInFlight -= 1; pumpDetails(); });
  }
}

function onFeedStatus(message) {
  const isNew = !orders.byId.has(message.orderId);
  if (orders.fromStatus(message)) redraw();
  if (isNew && orders.needsDetails(message.orderId)) fetchDetails(message.orderId);
}

function onFeedRefused(error) {
  if (error.rule === "unauthorized") askForKey("The gateway no longer accepts this key.");
  else $("feed-error").textContent = error.message;
}

// --- metrics ------------------------------------------------------------------------------

const rates = new Rates();
const acceptedHistory = [];

async function pollMetrics() {
  try {
    const samples = parse(await getText("/metrics"));
    drawBacklog($("backlog"), backlog(samples));
    const values = {
      accepted: total(samples, "oee_orders_accepted"),
      statuses: total(samples, "oee_statuses_sent"),
    };
    const now = performance.now();
    const rate = rates.update(now, values);
    showRate("rate-accepted", rate.accepted);
    showRate("rate-statuses", rate.statuses);
    $("total-accepted").textContent = values.accepted === null
      ? "" : `${values.accepted.toLocaleString()} accepted since the gateway started`;
    if (rate.accepted !== undefined && rate.accepted !== null) {
      acceptedHistory.push(rate.accepted);
      if (acceptedHistory.length > SPARK_POINTS) acceptedHistory.shift();
      drawSparkline($("spark"), acceptedHistory);
    }
    $("metrics-error").textContent = "";
  } catch (problem) {
    $("metrics-error").textContent = `metrics unavailable: ${problem.message}`;
  }
}

function showRate(id, value) {
  if (value === undefined) return;
  $(id).textContent = value === null ? "–" : value < 10 ? value.toFixed(1) : Math.round(value);
}

// --- submitting -------------------------------------------------------------------------

function fillTokens() {
  for (const [name, chosen] of [["tokenIn", "SOL"], ["tokenOut", "USDC"]]) {
    const select = $("order-form").elements[name];
    select.replaceChildren(...TOKENS.map((token) => new Option(token, token, false, token === chosen)));
  }
}

$("swap-tokens").addEventListener("click", () => {
  const form = $("order-form").elements;
  [form.tokenIn.value, form.tokenOut.value] = [form.tokenOut.value, form.tokenIn.value];
});

function liveItem(message) {
  const item = document.createElement("li");
  item.dataset.status = message.status;
  const time = document.createElement("time");
  time.textContent = formatTime(message.timestamp);
  const detail = document.createElement("span");
  detail.className = "detail";
  const parts = [];
  if (message.routedDex) parts.push(routeLabel(message.routedDex));
  if (message.txHash) parts.push(shortSignature(message.txHash));
  if (message.executedPrice) parts.push(`@ ${formatPrice(message.executedPrice)}`);
  if (message.amountOut) parts.push(`→ ${message.amountOut}`);
  if (message.error) parts.push(message.error);
  detail.textContent = parts.join("  ·  ");
  item.append(statusBadge(message.status), time, detail);
  return item;
}

$("order-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = $("order-form").elements;
  $("form-error").textContent = "";
  const order = {
    tokenIn: form.tokenIn.value,
    tokenOut: form.tokenOut.value,
    amount: form.amount.value.trim(),
    slippage: Number(form.slippage.value) / 100,
  };
  const list = $("live-statuses");
  list.replaceChildren();
  $("live-order").textContent = "";
  const button = $("execute");
  button.disabled = true;
  submitOrder(order, {
    status(message) {
      $("live-order").textContent = shortId(message.orderId);
      $("live-order").title = message.orderId;
      list.append(liveItem(message));
      if (message.status === "pending") {
        orders.describe(message.orderId, { tokenIn: order.tokenIn, tokenOut: order.tokenOut,
          amount: order.amount });
      }
      if (orders.fromStatus(message)) redraw();
      button.disabled = false;
    },
    refused(error) {
      $("form-error").textContent = error.field ? `${error.field}: ${error.message}` : error.message;
      if (error.rule === "unauthorized") askForKey("The gateway refused this key.");
    },
    closed(code) {
      button.disabled = false;
      if (code !== 1000 && code !== 1008 && !$("form-error").textContent) {
        $("form-error").textContent = `The connection closed (${code}); the order table still follows it.`;
      }
    },
  });
});

// --- start and stop -----------------------------------------------------------------------

function start(page) {
  showKey();
  for (const row of page.orders) orders.fromRow(row);
  redraw();
  feed = new Feed({ status: onFeedStatus, state: setFeedState, refused: onFeedRefused });
  feed.start();
  pollMetrics();
  metricsTimer = setInterval(pollMetrics, METRICS_EVERY_MS);
}

function stop() {
  if (feed) feed.stop();
  feed = null;
  clearInterval(metricsTimer);
}

async function boot() {
  fillTokens();
  redraw();
  // Keys on or off? A stored key says on; else an answer without a key says off.
  try {
    start(await getJson("/orders?limit=50"));
  } catch (problem) {
    if (problem instanceof Unauthorized) askForKey("");
    else $("feed-error").textContent = `The gateway did not answer: ${problem.message}`;
  }
}

boot();
