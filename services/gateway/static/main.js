// The dashboard: asks for a key when the gateway wants one, then places market, limit and
// sniper orders, shows the account's orders live (and the open ones, with cancel), opens
// any order into its detail, follows pool launches, and polls /metrics. One WebSocket (the
// account's stream) carries every status; everything else is plain HTTP.

import { Feed, Unauthorized, auth, cancelOrder, getJson, submitOrder } from "./api.js";
import { drawRoutes } from "./charts.js";
import { Detail } from "./detail.js";
import { clearErrors, fillTokens, orderBody, showProblem, showRefusal, showType } from "./form.js";
import { Launches, renderLaunches } from "./launches.js";
import { Orders, formatPrice, formatTime, renderOpen, renderTable, routeLabel, shortId,
  shortSignature, statusBadge } from "./orders.js";
import { pollMetrics } from "./throughput.js";
import { Tokens } from "./tokens.js";

// Offered until GET /tokens answers: the tokens every engine lists.
const SEED_TOKENS = ["SOL", "USDC", "USDT", "BONK", "JUP", "RAY"];
const POLL_EVERY_MS = 2000;
// The order lists come from PostgreSQL's projection, which trails the log by up to a second
// (the persister records a second's events in one transaction): they are read again once
// that has passed, so what changed just before the page opened is in them too, and the
// feed brings what changed since.
const PROJECTION_LAG_MS = 1500;
// The recent orders the page lists.
const RECENT = "/orders?limit=50";
const OPEN_PAGE = 100;

const $ = (id) => document.getElementById(id);
const form = $("order-form");
const orders = new Orders();
const tokens = new Tokens();
const launches = new Launches();
const detail = new Detail($("order-detail"), tokens);
// The open orders whose cancel is under way.
const cancelling = new Set();
let feed = null;
let pollTimer = null;
let catchUpTimer = null;
// The order this page submitted last: its statuses are shown under the form.
let watched = null;

// --- drawing, at most once a frame ---------------------------------------------------

let drawPending = false;
// While a button of a table is pressed its row stays put, or the click would be lost: the
// changes wait until the press ends.
let pressing = false;
let heldChanges = new Set();
let openIds = new Set();

function redraw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    drawRoutes($("routes-chart"), orders.routeCounts());
    const changed = new Set([...heldChanges, ...orders.takeChanged()]);
    if (pressing) {
      heldChanges = changed;
      return;
    }
    heldChanges = new Set();
    renderTable($("orders-body"), orders.recent(), changed);
    $("orders-empty").hidden = orders.byId.size > 0;
    const open = orders.open();
    // Redrawn only when an open order (or one that was open) changed.
    if ([...changed].some((id) => openIds.has(id) || orders.byId.get(id)?.status === "open")) {
      renderOpen($("open-body"), open, changed, cancelling);
      openIds = new Set(open.map((order) => order.orderId));
    }
    $("open-empty").hidden = open.length > 0;
  });
}
for (const id of ["orders-body", "open-body"]) {
  $(id).addEventListener("pointerdown", () => { pressing = true; });
}
for (const type of ["pointerup", "pointercancel"]) {
  // After the click that the release makes.
  window.addEventListener(type, () => { pressing = false; setTimeout(redraw); });
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
    const page = await getJson(RECENT, key);
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
const detailsAsked = new Set();
let detailsInFlight = 0;

// An order first seen on the stream lacks its pair, an open one its condition: fetch them,
// a few at a time, and skip the details rather than fall behind when orders arrive by the
// hundred.
function fetchDetails(orderId) {
  if (detailsQueue.length > 100 || detailsAsked.has(orderId)) return;
  detailsAsked.add(orderId);
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
      .finally(() => {
        detailsInFlight -= 1;
        detailsAsked.delete(orderId);
        pumpDetails();
      });
  }
}

function onFeedStatus(message) {
  if (!orders.fromStatus(message)) return;
  redraw();
  if (orders.needsDetails(message.orderId)) fetchDetails(message.orderId);
  if (message.orderId === watched) $("live-statuses").append(liveItem(message));
  if (message.orderId === detail.orderId) detail.refresh();
}

function onFeedRefused(error) {
  if (error.rule === "unauthorized") askForKey("The gateway no longer accepts this key.");
  else $("feed-error").textContent = error.message;
}

// --- open orders: cancel -------------------------------------------------------------------

$("open-body").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-cancel]");
  if (!button) return;
  const orderId = button.dataset.cancel;
  cancelling.add(orderId);
  orders.touched(orderId);
  redraw();
  $("open-error").textContent = "";
  try {
    const { status, body } = await cancelOrder(orderId);
    // The stream brings the cancelled status, which takes the row away.
    if (status !== 202) {
      $("open-error").textContent = `Order ${shortId(orderId)}: `
        + (body?.error?.message || `the gateway answered ${status}`);
    }
  } catch (problem) {
    if (problem instanceof Unauthorized) askForKey("The gateway refused this key.");
    else $("open-error").textContent = `Order ${shortId(orderId)}: ${problem.message}`;
  }
  cancelling.delete(orderId);
  orders.touched(orderId);
  redraw();
});

// --- an order's detail: #order=ID ----------------------------------------------------------

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-open]");
  if (button) location.hash = `order=${encodeURIComponent(button.dataset.open)}`;
});

function followHash() {
  const match = /^#order=(.+)$/.exec(location.hash);
  if (match) detail.open(decodeURIComponent(match[1]));
  else detail.close();
}
window.addEventListener("hashchange", followHash);

$("detail-close").addEventListener("click", () => detail.close());
$("order-detail").addEventListener("close", () => {
  detail.orderId = null;
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
});

// --- polling: metrics and launches ------------------------------------------------------

async function pollLaunches() {
  try {
    const fresh = await launches.poll();
    $("launches-error").textContent = "";
    if (fresh.map(({ launch }) => tokens.fromLaunch(launch)).some(Boolean)) {
      fillTokens(form, tokens.symbols());
    }
    if (fresh.length || !$("launches-list").childElementCount) {
      renderLaunches($("launches-list"), launches.recent(), new Set(fresh.map((l) => l.id)));
    }
    $("launches-empty").hidden = launches.seen.length > 0;
  } catch (problem) {
    $("launches-error").textContent = `launches unavailable: ${problem.message}`;
  }
}

function poll() {
  pollMetrics();
  pollLaunches();
}

// --- placing orders ------------------------------------------------------------------------

form.addEventListener("change", (event) => {
  if (event.target.name === "type") showType(form);
});

$("swap-tokens").addEventListener("click", () => {
  const fields = form.elements;
  [fields.tokenIn.value, fields.tokenOut.value] = [fields.tokenOut.value, fields.tokenIn.value];
});

function liveItem(message) {
  const item = document.createElement("li");
  item.dataset.status = message.status;
  const time = document.createElement("time");
  time.textContent = formatTime(message.timestamp);
  const detailText = document.createElement("span");
  detailText.className = "detail";
  const parts = [];
  if (message.routedDex) parts.push(routeLabel(message.routedDex));
  if (message.txHash) parts.push(shortSignature(message.txHash));
  if (message.executedPrice) parts.push(`@ ${formatPrice(message.executedPrice)}`);
  if (message.amountOut) parts.push(`→ ${message.amountOut}`);
  if (message.error) parts.push(message.error);
  detailText.textContent = parts.join("  ·  ");
  item.append(statusBadge(message.status), time, detailText);
  return item;
}

// Follow a submitted order under the form; what the stream brought before the answer to
// the submit came back is kept with the order.
function watch(orderId, body) {
  watched = orderId;
  $("live-order").textContent = shortId(orderId);
  $("live-order").title = orderId;
  orders.describe(orderId, { type: body.type, tokenIn: body.tokenIn, tokenOut: body.tokenOut,
    amount: body.amount });
  const seen = orders.byId.get(orderId).statuses || [];
  $("live-statuses").replaceChildren(...seen.map(liveItem));
  redraw();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(form);
  // The last order's statuses go: what shows next is this one's.
  watched = null;
  $("live-order").textContent = "";
  $("live-order").removeAttribute("title");
  $("live-statuses").replaceChildren();
  const body = orderBody(form);
  const button = $("execute");
  button.disabled = true;
  try {
    const { status, body: answer } = await submitOrder(body);
    if (status === 202) {
      watch(answer.orderId, body);
    } else if (answer?.error) {
      showRefusal(form, answer.error);
    } else {
      showProblem(form, `The gateway answered ${status}.`);
    }
  } catch (problem) {
    if (problem instanceof Unauthorized) askForKey("The gateway refused this key.");
    else showProblem(form, `The order was not sent: ${problem.message}`);
  } finally {
    button.disabled = false;
  }
});

// --- start and stop -----------------------------------------------------------------------

async function loadTokens() {
  try {
    tokens.fromList(await getJson("/tokens"));
    fillTokens(form, tokens.symbols());
  } catch {
    // The seed's tokens stay offered; a launch adds its token when it comes.
  }
}

async function loadOpen() {
  try {
    const page = await getJson(`/orders?status=open&limit=${OPEN_PAGE}`);
    for (const row of page.orders) {
      orders.fromRow(row);
      if (orders.needsDetails(row.orderId)) fetchDetails(row.orderId);
    }
    redraw();
  } catch (problem) {
    $("open-error").textContent = `Open orders unavailable: ${problem.message}`;
  }
}

function start(page) {
  showKey();
  for (const row of page.orders) orders.fromRow(row);
  redraw();
  feed = new Feed({ status: onFeedStatus, state: setFeedState, refused: onFeedRefused });
  feed.start();
  loadTokens();
  loadOpen();
  catchUpTimer = setTimeout(catchUp, PROJECTION_LAG_MS);
  poll();
  pollTimer = setInterval(poll, POLL_EVERY_MS);
  followHash();
}

async function catchUp() {
  try {
    for (const row of (await getJson(RECENT)).orders) orders.fromRow(row);
    redraw();
  } catch {
    // The feed goes on; the next page load reads the lists again.
  }
  loadOpen();
}

function stop() {
  if (feed) feed.stop();
  feed = null;
  clearInterval(pollTimer);
  clearTimeout(catchUpTimer);
}

async function boot() {
  fillTokens(form, SEED_TOKENS);
  showType(form);
  redraw();
  // Keys on or off? A stored key says on; else an answer without a key says off.
  try {
    start(await getJson(RECENT));
  } catch (problem) {
    if (problem instanceof Unauthorized) askForKey("");
    else $("feed-error").textContent = `The gateway did not answer: ${problem.message}`;
  }
}

boot();
