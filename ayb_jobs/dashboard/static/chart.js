// The last hour at a glance: completed and failed jobs per minute as an inline SVG bar chart (no
// library, nothing fetched), and a per-type breakdown table. Fed by GET /jobs/timeline.

import { cell, clip, fmtTime, h, svg, table } from "./ui.js";

const WIDTH = 600;
const HEIGHT = 120;
const PAD_TOP = 8;

function total(minutes, key) {
  return minutes.reduce((sum, m) => sum + m[key], 0);
}

/** Round the axis maximum up to 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function bars(minutes, max) {
  const step = WIDTH / minutes.length;
  const scale = (n) => (n / max) * (HEIGHT - PAD_TOP);
  return minutes.map((m, i) => {
    const x = i * step + step * 0.1;
    const width = step * 0.8;
    const done = scale(m.completed);
    const failed = scale(m.failed);
    const label = `${fmtTime(m.at)}: ${m.completed} completed, ${m.failed} failed`;
    return svg("g", { class: "bar", "data-minute": m.at },
      svg("title", {}, label),
      // An invisible full-height target, so even an empty minute has a tooltip.
      svg("rect", { class: "bar-hit", x: i * step, y: 0, width: step, height: HEIGHT }),
      done > 0 ? svg("rect", { class: "bar-completed", x, y: HEIGHT - done, width, height: done }) : null,
      failed > 0 ? svg("rect", { class: "bar-failed", x, y: HEIGHT - done - failed, width, height: failed }) : null);
  });
}

export function timelineChart(minutes) {
  const completed = total(minutes, "completed");
  const failed = total(minutes, "failed");
  const max = niceMax(Math.max(1, ...minutes.map((m) => m.completed + m.failed)));
  const summary = `Last ${minutes.length} minutes: ${completed} completed, ${failed} failed.`;
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, preserveAspectRatio: "none", class: "chart",
    id: "timeline-chart", role: "img", "aria-label": summary },
  svg("line", { class: "axis", x1: 0, y1: HEIGHT - 0.5, x2: WIDTH, y2: HEIGHT - 0.5 }),
  svg("line", { class: "gridline", x1: 0, y1: PAD_TOP, x2: WIDTH, y2: PAD_TOP }),
  bars(minutes, max));
  const first = minutes[0]?.at;
  return h("figure", { class: "chart-figure" },
    h("div", { class: "chart-head" },
      h("span", { class: "chart-max", title: "Jobs per minute at the top line" }, `${max}/min`),
      h("span", { class: "legend" }, h("span", { class: "swatch swatch-completed" }), `${completed} completed `,
        h("span", { class: "swatch swatch-failed" }), `${failed} failed`)),
    chart,
    h("div", { class: "chart-foot muted" }, h("span", {}, first ? fmtTime(first) : ""), h("span", {}, "now")),
    h("figcaption", { class: "sr-only", id: "timeline-summary" }, summary));
}

export function breakdownTable(types) {
  if (types.length === 0) return h("p", { class: "muted", id: "breakdown-empty" }, "No jobs in the last hour.");
  const tbody = h("tbody", { id: "breakdown-body" }, types.map((t) => h("tr", { "data-type": t.type },
    cell("Type", h("a", { href: `#/jobs?type=${encodeURIComponent(t.type)}`, class: "mono" }, clip(t.type))),
    cell("Queued", String(t.queued)), cell("Running", String(t.running)),
    cell("Completed (1 h)", String(t.completed)), cell("Failed (1 h)", String(t.failed)))));
  return h("div", { class: "table-wrap" }, table({ id: "breakdown-table", cls: "breakdown-table",
    caption: "Jobs per type: queued and running now, completed and failed in the last hour",
    columns: ["Type", "Queued", "Running", "Completed (1 h)", "Failed (1 h)"], tbody }));
}
