// Workers: the daemons seen recently (GET /workers), alive ones first, each with its load, what it
// serves and the jobs it is running now (links to the jobs). A daemon that stopped heartbeating
// shows as "gone" until it ages out of the list.

import { api } from "./api.js";
import {
  badge, cell, clip, fmtDuration, h, keepFocus, secondsUntil, shortId, table, timeEl, toastError,
} from "./ui.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

const JOBS_SHOWN = 5;

export function renderWorkers() {
  const isCurrent = beginView();
  const tbody = h("tbody", { id: "workers-body" });
  const wrap = h("div", { class: "table-wrap" }, table({ id: "workers-table", cls: "workers-table",
    caption: "Daemons seen recently, alive first",
    columns: ["Worker", "Status", "Host", "Version", "Up since", "Last seen", "Load", "Serves", "Running jobs"],
    tbody }));
  const empty = h("p", { class: "empty", id: "workers-empty", hidden: true },
    "No daemon has reported in recently. Is ayb-jobs run with jobs.enabled = true?");
  const summary = h("p", { class: "hint", id: "workers-summary" });
  mount(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Workers")),
    summary, wrap, empty));

  async function refresh() {
    let data;
    try {
      data = await api("GET", "/workers");
    } catch (err) {
      if (isCurrent()) toastError(err, "Loading workers failed");
      return;
    }
    if (!isCurrent()) return;
    const items = [...data.items].sort(byAliveThenLastSeen);
    keepFocus(() => tbody.replaceChildren(...items.map(workerRow)));
    wrap.hidden = items.length === 0;
    empty.hidden = items.length !== 0;
    summary.textContent = summarize(items);
    markUpdated();
  }

  setRefresh(refresh);
  refresh();
}

function byAliveThenLastSeen(a, b) {
  if (a.alive !== b.alive) return a.alive ? -1 : 1;
  return b.lastSeenAt.localeCompare(a.lastSeenAt);
}

function summarize(items) {
  const alive = items.filter((w) => w.alive);
  const slots = alive.reduce((n, w) => n + w.concurrency, 0);
  const busy = alive.reduce((n, w) => n + w.inFlight, 0);
  const gone = items.length - alive.length;
  return `${alive.length} alive (${busy} of ${slots} slots busy)` + (gone ? `, ${gone} gone.` : ".");
}

function workerRow(w) {
  return h("tr", { "data-worker-id": w.workerId, "data-alive": String(w.alive) },
    cell("Worker", clip(w.workerId, { cls: "mono" })),
    cell("Status", badge(w.alive ? "alive" : "gone")),
    cell("Host", clip(w.host, { cls: "mono" }), h("span", { class: "muted" }, ` pid ${w.pid}`)),
    cell("Version", h("span", { class: "mono" }, w.version)),
    cell("Up since", timeEl(w.startedAt)),
    cell("Last seen", timeEl(w.lastSeenAt), h("span", { class: "muted when" }, ` ${ago(w.lastSeenAt)}`)),
    cell("Load", loadMeter(w)),
    cell("Serves", serves(w)),
    cell("Running jobs", runningJobs(w)));
}

const ago = (iso) => `${fmtDuration(-secondsUntil(iso))} ago`;

function loadMeter(w) {
  const share = w.concurrency > 0 ? Math.min(1, w.inFlight / w.concurrency) : 0;
  return h("span", { class: "load" },
    h("meter", { min: 0, max: w.concurrency, value: w.inFlight, "aria-hidden": "true",
      class: share >= 1 ? "full" : null }),
    h("span", { class: "load-text", title: "Jobs in flight of its worker_concurrency, as it last reported" },
      `${w.inFlight} / ${w.concurrency}`));
}

function serves(w) {
  const queues = w.queues.length ? w.queues.join(", ") : "all queues";
  const types = w.types.length === 1 ? "1 type" : `${w.types.length} types`;
  return h("span", {}, clip(queues), h("span", { class: "muted", title: w.types.join(", ") }, ` · ${types}`));
}

function runningJobs(w) {
  if (w.jobs.length === 0) return h("span", { class: "muted" }, "—");
  const shown = w.jobs.slice(0, JOBS_SHOWN).map((j) => h("li", {},
    h("a", { href: `#/jobs/${j.id}`, class: "mono", title: j.id, "aria-label": `Job ${j.id}` }, shortId(j.id)),
    " ", clip(j.type, { cls: "mono muted" }),
    j.startedAt ? h("span", { class: "muted when" }, ` for ${fmtDuration(-secondsUntil(j.startedAt))}`) : null));
  const more = w.jobs.length - shown.length;
  return h("ul", { class: "worker-jobs" }, shown,
    more > 0 ? h("li", {}, h("a", { href: "#/running" }, `and ${more} more`)) : null);
}
