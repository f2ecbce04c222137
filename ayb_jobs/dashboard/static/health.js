// The Postgres health banner above every view: GET /health on each refresh; shown while any check is
// not "ok" (warning, or worse should the API ever say so), with each check's message, which says what
// to do. Rewritten only when the reading changes, so a screen reader announces it once.

import { api } from "./api.js";
import { $, fmtTime, h } from "./ui.js";

let shown = "";

export function hideHealth() {
  shown = "";
  const banner = $("#health-banner");
  banner.hidden = true;
  banner.replaceChildren();
}

export async function refreshHealth() {
  let report;
  try {
    report = await api("GET", "/health");
  } catch {
    // No database for the admin API, or the daemon is unreachable: the view says so; a stale banner
    // would only mislead.
    hideHealth();
    return;
  }
  const bad = report.checks.filter((c) => c.status !== "ok");
  if (report.status === "ok" || bad.length === 0) {
    hideHealth();
    return;
  }
  const key = JSON.stringify([report.status, bad.map((c) => [c.name, c.status, c.message])]);
  if (key === shown) return;
  shown = key;
  const banner = $("#health-banner");
  banner.className = `health-banner health-${report.status}`;
  banner.dataset.status = report.status;
  banner.replaceChildren(
    h("p", { class: "health-title" }, h("strong", {}, `Postgres health: ${report.status}`),
      report.checkedAt ? h("span", { class: "muted-on-banner" }, ` (reading of ${fmtTime(report.checkedAt)})`) : null),
    h("ul", {}, bad.map((c) => h("li", { "data-check": c.name }, h("strong", {}, `${c.name}: `), c.message))));
  banner.hidden = false;
}
