// Small SVG charts drawn by hand: the routing decisions, bars, and a sparkline.

const SVG = "http://www.w3.org/2000/svg";
const VENUE_COLORS = { raydium: "var(--raydium)", meteora: "var(--meteora)" };
const KINDS = ["direct", "split", "two hops"];

function svg(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== null) element.textContent = text;
  return element;
}

const title = (word) => word.charAt(0).toUpperCase() + word.slice(1);

export function venueColor(venue) {
  return VENUE_COLORS[venue] || "var(--muted)";
}

// ``routedDex`` as the API writes it: "raydium", "raydium+meteora" (a split), or
// "meteora>raydium" (two hops, each of which may itself be split).
export function routeOf(routedDex) {
  const hops = routedDex.split(">").map((hop) => hop.split("+").map((v) => v.trim()));
  const venues = [...new Set(hops.flat())];
  const kind = hops.length > 1 ? "two hops" : hops[0].length > 1 ? "split" : "direct";
  const label = hops.map((hop) => hop.map(title).join(" + ")).join(" → ");
  return { kind, venues, label };
}

// One bar per route taken, grouped by kind, coloured by the venues it used.
export function drawRoutes(container, counts) {
  container.replaceChildren();
  const rows = [...counts.entries()]
    .map(([dex, count]) => ({ ...routeOf(dex), dex, count }))
    .sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || b.count - a.count);
  if (!rows.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No routed orders yet: submit one.";
    container.append(empty);
    return;
  }
  const all = rows.reduce((sum, row) => sum + row.count, 0);
  const most = Math.max(...rows.map((row) => row.count));
  const width = Math.max(container.clientWidth, 280);
  const rowHeight = 34;
  const labelWidth = 176;
  const countWidth = 72;
  const barSpace = width - labelWidth - countWidth;
  const chart = svg("svg", {
    width, height: rows.length * rowHeight, viewBox: `0 0 ${width} ${rows.length * rowHeight}`,
    role: "img", "aria-label": "Routing decisions by venue and route kind",
  });
  const defs = svg("defs");
  chart.append(defs);
  rows.forEach((row, index) => {
    const y = index * rowHeight;
    chart.append(svg("text", { x: 0, y: y + 14, class: "route-label" }, row.label));
    chart.append(svg("text", { x: 0, y: y + 27, class: "route-kind" }, row.kind));
    const barWidth = Math.max(3, (row.count / most) * barSpace);
    const fill = row.venues.length === 1 ? venueColor(row.venues[0]) : `url(#route-${index})`;
    if (row.venues.length > 1) {
      // Hard stops: one band per venue, as a split or a path shares the order between them.
      const gradient = svg("linearGradient", { id: `route-${index}` });
      row.venues.forEach((venue, v) => {
        const color = venueColor(venue);
        gradient.append(svg("stop", { offset: v / row.venues.length, "stop-color": color }));
        gradient.append(svg("stop", { offset: (v + 1) / row.venues.length, "stop-color": color }));
      });
      defs.append(gradient);
    }
    const bar = svg("rect", {
      x: labelWidth, y: y + 6, width: barWidth, height: rowHeight - 14, rx: 4, fill,
      "data-route": row.dex,
    });
    bar.append(svg("title", {}, `${row.label} (${row.kind}): ${row.count}`));
    chart.append(bar);
    const share = Math.round((row.count / all) * 100);
    chart.append(svg("text", { x: labelWidth + barWidth + 8, y: y + 22, class: "route-count" },
      `${row.count} · ${share}%`));
  });
  container.append(chart);
}

// A horizontal bar per group: what each consumer group still has to do.
export function drawBacklog(container, groups) {
  container.replaceChildren();
  if (!groups.size) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No consumer groups reported yet.";
    container.append(empty);
    return;
  }
  const scale = Math.max(10, ...groups.values());
  for (const [group, count] of [...groups.entries()].sort()) {
    const row = document.createElement("div");
    row.className = "meter";
    row.dataset.group = group;
    const name = document.createElement("span");
    name.className = "meter-name";
    name.textContent = group;
    const track = document.createElement("span");
    track.className = "meter-track";
    const fill = document.createElement("span");
    fill.className = "meter-fill";
    fill.style.width = `${(count / scale) * 100}%`;
    if (count > 0) fill.classList.add("busy");
    track.append(fill);
    const value = document.createElement("span");
    value.className = "meter-value";
    value.textContent = count.toLocaleString();
    row.append(name, track, value);
    container.append(row);
  }
}

// The last readings of a rate, as a line and the area under it.
export function drawSparkline(container, values) {
  const width = 240;
  const height = 40;
  const top = Math.max(1, ...values);
  const step = width / Math.max(1, values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / top) * (height - 4)).toFixed(1)}`);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", class: "spark",
    "aria-hidden": "true",
  });
  if (points.length > 1) {
    chart.append(svg("polygon", {
      points: `0,${height} ${points.join(" ")} ${((values.length - 1) * step).toFixed(1)},${height}`,
      class: "spark-area",
    }));
    chart.append(svg("polyline", { points: points.join(" "), class: "spark-line" }));
  }
  container.replaceChildren(chart);
}
