// Queues: every queue with settings or live jobs (GET /queues) and its depth, with Pause/Resume and
// the global concurrency limit (PUT /queues/{name}: a number, or "No limit"). The depth refreshes
// every few seconds; a limit being typed survives the refresh (kept in `drafts` until it is set).

import { api } from "./api.js";
import { actionButton, badge, cell, clip, fmtDuration, h, keepFocus, table, toastError } from "./ui.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

const drafts = new Map(); // queue name -> the limit text typed but not set yet

export function renderQueues() {
  const isCurrent = beginView();
  const tbody = h("tbody", { id: "queues-body" });
  const wrap = h("div", { class: "table-wrap" }, table({ id: "queues-table", cls: "queues-table",
    caption: "Queues with settings or queued or running jobs, by name",
    columns: ["Queue", "Status", "Queued", "Scheduled", "Running", "Oldest due", "Limit", "Actions"],
    tbody }));
  const empty = h("p", { class: "empty", id: "queues-empty", hidden: true },
    "No queue has jobs or settings yet. Jobs go to the queue \"default\" unless they name one.");
  const summary = h("p", { class: "hint", id: "queues-summary" },
    "Lower priority runs first within the queues a daemon works. A limit holds across all daemons.");
  mount(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Queues")),
    summary, wrap, empty));

  async function refresh() {
    let data;
    try {
      data = await api("GET", "/queues");
    } catch (err) {
      if (isCurrent()) toastError(err, "Loading queues failed");
      return;
    }
    if (!isCurrent()) return;
    keepFocus(() => tbody.replaceChildren(...data.items.map((q) => queueRow(q, refresh))));
    wrap.hidden = data.items.length === 0;
    empty.hidden = data.items.length !== 0;
    markUpdated();
  }

  setRefresh(refresh);
  refresh();
}

function queueRow(q, refresh) {
  const running = q.concurrency === null ? String(q.running) : `${q.running} / ${q.concurrency}`;
  return h("tr", { "data-queue": q.name, "data-paused": String(q.paused) },
    cell("Queue", clip(q.name, { cls: "mono" })),
    cell("Status", badge(q.paused ? "paused" : "active")),
    cell("Queued", h("span", { class: "num" }, String(q.queued))),
    cell("Scheduled", h("span", { class: "num" }, String(q.scheduled))),
    cell("Running", h("span", { class: "num", title: q.concurrency === null ? "no limit" : "running / limit" },
      running)),
    cell("Oldest due", q.oldestDueAgeSec > 0 ? fmtDuration(q.oldestDueAgeSec) : h("span", { class: "muted" }, "—")),
    cell("Limit", limitEditor(q, refresh)),
    cell("Actions", pauseButton(q, refresh)));
}

function pauseButton(q, refresh) {
  const verb = q.paused ? "resume" : "pause";
  const label = q.paused ? "Resume" : "Pause";
  return actionButton({ class: "small", "aria-label": `${label} queue ${q.name}` }, label, {
    key: `${verb}:${q.name}`, refresh, errorContext: `${label} failed`,
    focusKeys: [`${verb === "pause" ? "resume" : "pause"}:${q.name}`, `${verb}:${q.name}`],
    run: async () => {
      const done = await api("POST", `/queues/${encodeURIComponent(q.name)}/${verb}`);
      return `Queue ${done.name} ${done.paused ? "paused: its jobs stay queued" : "resumed"}.`;
    },
  });
}

function limitEditor(q, refresh) {
  const inputKey = `limit-input:${q.name}`;
  const input = h("input", {
    type: "number", min: "1", step: "1", inputmode: "numeric", class: "limit-input", "data-key": inputKey,
    "aria-label": `Concurrency limit of queue ${q.name}`, placeholder: "none",
    value: drafts.get(q.name) ?? (q.concurrency === null ? "" : String(q.concurrency)),
  });
  input.addEventListener("input", () => drafts.set(q.name, input.value));
  const set = actionButton({ class: "small", "aria-label": `Set the limit of queue ${q.name}` }, "Set", {
    key: `limit-set:${q.name}`, refresh, errorContext: "Setting the limit failed", focusKeys: [inputKey],
    run: async () => {
      const text = input.value.trim();
      const value = text === "" ? null : Number(text);
      if (value !== null && !(Number.isInteger(value) && value >= 1)) {
        throw new Error(`the limit must be a whole number of 1 or more (or empty for no limit), not "${text}"`);
      }
      const done = await api("PUT", `/queues/${encodeURIComponent(q.name)}`, { body: { concurrency: value } });
      drafts.delete(q.name);
      return done.concurrency === null ? `Queue ${done.name} has no limit now.`
        : `Queue ${done.name}: at most ${done.concurrency} running at once.`;
    },
  });
  const clear = actionButton({ class: "small", "aria-label": `Remove the limit of queue ${q.name}`,
    disabled: q.concurrency === null }, "No limit", {
    key: `limit-clear:${q.name}`, refresh, errorContext: "Removing the limit failed", focusKeys: [inputKey],
    run: async () => {
      const done = await api("PUT", `/queues/${encodeURIComponent(q.name)}`, { body: { concurrency: null } });
      drafts.delete(q.name);
      return `Queue ${done.name} has no limit now.`;
    },
  });
  // novalidate: a wrong limit is said in a toast like every other error, not a browser bubble.
  const form = h("form", { class: "limit-form", novalidate: true }, input, set, clear);
  form.addEventListener("submit", (event) => { event.preventDefault(); set.click(); });
  return form;
}
