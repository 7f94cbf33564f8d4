// Reading the gateway's /metrics (Prometheus text). Metrics are found by name prefix and
// everything else is ignored, so renamed or added series do not break the page.

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parse(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const value = Number(match[3]);
    if (Number.isNaN(value)) continue;
    const labels = {};
    for (const [, name, text] of (match[2] || "").matchAll(LABEL)) labels[name] = text;
    samples.push({ name: match[1], labels, value });
  }
  return samples;
}

// The sum of a counter's series; ``_created`` series are timestamps, not counts.
export function total(samples, prefix) {
  let sum = 0;
  let found = false;
  for (const s of samples) {
    if (s.name.startsWith(prefix) && !s.name.endsWith("_created")) {
      sum += s.value;
      found = true;
    }
  }
  return found ? sum : null;
}

// Per consumer group, entries pending or not yet read: ``oee_group_backlog``, or the sum
// of a group's lag and pending where those are reported apart.
export function backlog(samples) {
  const whole = new Map();
  const parts = new Map();
  for (const s of samples) {
    const group = s.labels.group;
    if (!group || !s.name.startsWith("oee_group_")) continue;
    if (s.name.startsWith("oee_group_backlog")) {
      whole.set(group, (whole.get(group) || 0) + s.value);
    } else if (/^oee_group_(lag|pending)/.test(s.name)) {
      parts.set(group, (parts.get(group) || 0) + s.value);
    }
  }
  return whole.size ? whole : parts;
}

// Per-second rates of counters between two readings; a restarted counter reads as 0.
export class Rates {
  constructor() { this.last = null; }

  update(now, values) {
    const rates = {};
    if (this.last) {
      const seconds = (now - this.last.now) / 1000;
      for (const [name, value] of Object.entries(values)) {
        const before = this.last.values[name];
        rates[name] = value === null || before == null || seconds <= 0
          ? null : Math.max(0, (value - before) / seconds);
      }
    }
    this.last = { now, values };
    return rates;
  }
}
