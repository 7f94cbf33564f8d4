// Pool launches as they come: GET /launches, then GET /launches?after=<the last id>, asked
// on the page's polling beat. Launches are rare; one small request every few seconds.

import { getJson } from "./api.js";
import { formatPrice, formatTime, shortToken } from "./orders.js";

const SHOWN = 30;

export class Launches {
  constructor() {
    this.after = null;
    this.seen = [];
  }

  // The launches since the last call, oldest first.
  async poll() {
    const query = this.after ? `?after=${encodeURIComponent(this.after)}` : "";
    const { launches } = await getJson(`/launches${query}`);
    if (launches.length) this.after = launches[launches.length - 1].id;
    this.seen = [...this.seen, ...launches].slice(-SHOWN);
    return launches;
  }

  // Newest first.
  recent() {
    return [...this.seen].reverse();
  }
}

function span(className, text, title) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text;
  if (title) node.title = title;
  return node;
}

export function renderLaunches(list, launches, fresh) {
  const items = launches.map(({ id, launch }) => {
    const item = document.createElement("li");
    item.dataset.id = id;
    item.dataset.symbol = launch.symbol;
    item.dataset.mint = launch.mint;
    if (fresh.has(id)) item.className = "flash";
    const time = document.createElement("time");
    time.dateTime = launch.at;
    time.textContent = formatTime(launch.at);
    item.append(
      time,
      span("symbol", launch.symbol),
      span(`venue venue-${launch.venue}`, launch.venue),
      span("price", `${formatPrice(launch.price)} ${launch.quote}`),
      span("liquidity muted", `${formatPrice(launch.liquidity)} ${launch.quote} deep`),
      span("mint mono muted", shortToken(launch.mint), launch.mint),
    );
    return item;
  });
  list.replaceChildren(...items);
}
