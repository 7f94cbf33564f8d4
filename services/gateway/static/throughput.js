// The throughput card, from the gateway's /metrics: orders accepted and statuses sent per
// second, a sparkline of the accepted rate, and each consumer group's backlog.

import { getText } from "./api.js";
import { drawBacklog, drawSparkline } from "./charts.js";
import { Rates, backlog, parse, total } from "./prometheus.js";

const SPARK_POINTS = 60;
const $ = (id) => document.getElementById(id);

const rates = new Rates();
const acceptedHistory = [];

export async function pollMetrics() {
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

