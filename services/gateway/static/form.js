// The order form: market, limit and sniper orders, each with its own fields. The page does
// not check what the API checks: it sends what was typed, and puts the API's refusal next
// to the field it names.

const BUTTON = { market: "Place market order", limit: "Place limit order",
  sniper: "Place sniper order" };
const HINT = {
  market: "Routed and executed at once, never below the quote less the slippage.",
  limit: "Waits open until the market pays the limit price, then executes.",
  sniper: "Waits open for the pool of a token, listed or not yet, and buys at its launch.",
};

export function orderType(form) {
  return form.elements.type.value;
}

// Show the fields of the chosen type; the others are neither shown nor sent.
export function showType(form) {
  const type = orderType(form);
  for (const field of form.querySelectorAll("[data-types]")) {
    field.hidden = !field.dataset.types.split(" ").includes(type);
  }
  form.querySelector("[type=submit]").textContent = BUTTON[type];
  form.querySelector(".type-hint").textContent = HINT[type];
}

export function fillTokens(form, symbols) {
  for (const [name, fallback] of [["tokenIn", "SOL"], ["tokenOut", "USDC"]]) {
    const select = form.elements[name];
    const chosen = select.value || fallback;
    select.replaceChildren(
      ...symbols.map((symbol) => new Option(symbol, symbol, false, symbol === chosen)));
  }
}

function text(form, name) {
  return form.elements[name].value.trim();
}

function putIf(body, name, value) {
  if (value !== "") body[name] = value;
}

// The body of POST /orders/execute, from what the visible fields hold.
export function orderBody(form) {
  const type = orderType(form);
  const body = {
    type,
    tokenIn: form.elements.tokenIn.value,
    tokenOut: type === "sniper" ? text(form, "mint") : form.elements.tokenOut.value,
  };
  putIf(body, "amount", text(form, "amount"));
  const slippage = text(form, "slippage");
  // The field is in percent, the API takes a fraction.
  if (slippage !== "") body.slippage = Number(slippage) / 100;
  if (type === "limit") {
    putIf(body, "limitPrice", text(form, "limitPrice"));
    const at = text(form, "expiresAt");
    // A datetime-local field is the browser's local time: sent with its offset, as UTC.
    if (at !== "") body.expiresAt = new Date(at).toISOString();
  }
  if (type === "sniper") putIf(body, "maxPrice", text(form, "maxPrice"));
  if (type !== "market") {
    const ttl = text(form, "ttlSeconds");
    if (ttl !== "") body.ttlSeconds = /^\d+$/.test(ttl) ? Number(ttl) : ttl;
  }
  return body;
}

export function clearErrors(form) {
  for (const message of form.querySelectorAll(".field-error")) message.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  form.querySelector(".form-error").textContent = "";
}

// The API's { field, rule, message }: next to the field it names when the form shows that
// field, else under the form.
export function showRefusal(form, error) {
  const field = form.querySelector(`[data-field="${CSS.escape(error.field)}"]:not([hidden])`);
  if (!field) {
    form.querySelector(".form-error").textContent = `${error.field}: ${error.message}`;
    return;
  }
  field.querySelector(".field-error").textContent = error.message;
  const input = field.querySelector("input, select");
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

export function showProblem(form, message) {
  form.querySelector(".form-error").textContent = message;
}
