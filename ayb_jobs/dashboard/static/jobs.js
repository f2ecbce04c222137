// The jobs views: all jobs (filters, search, stats, the last hour's chart), Running and Scheduled.
// Filters and page live in the URL (router.js), so a reload or a shared link shows the same view.

import { api, knownJobTypes, loadJobTypes } from "./api.js";
import { breakdownTable, timelineChart } from "./chart.js";
import { pushViewState } from "./router.js";
import {
  actionButton, badge, cell, clip, displayState, fmtDuration, h, keepFocus, pager, secondsUntil,
  shortId, table, timeEl, toastError, truncate,
} from "./ui.js";
import { actionsFor, bulkBar, cancelRequestedNote, confirmJobAction, runJobAction } from "./lifecycle.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

export const PAGE_SIZE = 50;

const MODES = {
  all: { path: "jobs", title: "Jobs", caption: "Jobs, newest first",
    columns: ["State", "Type", "ID", "Created", "Run at", "Attempts", "Last error", "Actions"] },
  running: { path: "running", title: "Running jobs", state: "running", caption: "Running jobs, newest first",
    columns: ["Type", "ID", "Worker", "Started", "Elapsed", "Attempt", "Lease until", "Actions"],
    empty: "No job is running." },
  scheduled: { path: "scheduled", title: "Scheduled jobs", state: "scheduled",
    caption: "Queued jobs whose run time has not come yet",
    columns: ["Type", "ID", "Run at", "Created", "Attempts", "Actions"], empty: "No job is scheduled for later." },
};

const STATE_FILTERS = [
  ["", "All states"], ["due", "queued: due now"], ["scheduled", "queued: scheduled for later"],
  ["queued", "queued (due and scheduled)"], ["running", "running"], ["completed", "completed"],
  ["failed", "failed"], ["canceled", "canceled"],
];

const STAT_ITEMS = [
  ["due", "Due", "#/jobs?state=due"], ["scheduled", "Scheduled", "#/scheduled"], ["running", "Running", "#/running"],
  ["completed", "Completed", "#/jobs?state=completed"], ["failed", "Failed", "#/jobs?state=failed"],
  ["canceled", "Canceled", "#/jobs?state=canceled"],
];

function readFilters(params) {
  const page = Number.parseInt(params.get("page") || "1", 10);
  return { state: params.get("state") || "", type: params.get("type") || "", q: params.get("q") || "",
    page: Number.isInteger(page) && page > 0 ? page : 1 };
}

export function renderJobs({ mode, params }) {
  const isCurrent = beginView();
  const spec = MODES[mode];
  const filters = readFilters(params);
  const stats = statsStrip();
  const timeline = mode === "all" ? h("section", { class: "panel timeline", "aria-labelledby": "timeline-title" },
    h("h2", { id: "timeline-title" }, "Last hour"), h("div", { id: "timeline-body" }, h("p", { class: "muted" }, "Loading…")))
    : null;
  const form = filterForm(mode, filters, (next) => {
    Object.assign(filters, next, { page: 1 });
    saveFilters();
    bulk?.update();
    refresh();
  });
  const bulk = mode === "all" ? bulkBar(() => filters, () => refresh()) : null;
  const tbody = h("tbody", { id: "jobs-body" });
  const jobsTable = table({ id: "jobs-table", cls: `jobs-table jobs-${mode}`, caption: spec.caption,
    columns: spec.columns, tbody });
  const empty = h("p", { class: "empty", id: "jobs-empty", hidden: true }, spec.empty || "No jobs match these filters.");
  const searchNote = h("p", { class: "hint", id: "search-note", hidden: true },
    "Search results are not refreshed automatically (a search reads every job); search again to update them.");
  const pagerNav = h("nav", { class: "pager", "aria-label": "Pagination" });
  const wrap = h("div", { class: "table-wrap" }, jobsTable);

  mount(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, spec.title)),
    stats, timeline, form.element, bulk?.element, searchNote, wrap, empty, pagerNav));

  function saveFilters() {
    const { state, type, q, page } = filters;
    pushViewState(spec.path, { state: mode === "all" ? state : "", type, q, page: page > 1 ? page : "" });
  }

  async function refresh({ auto = false } = {}) {
    bulk?.update(); // a bulk action started on an earlier visit of this view may have ended
    const listing = auto && filters.q ? null : loadPage();
    const [statsRes, timelineRes] = await Promise.allSettled([
      api("GET", "/jobs/stats"), timeline ? api("GET", "/jobs/timeline", { query: { minutes: 60 } }) : null,
    ]);
    if (!isCurrent()) return;
    if (statsRes.status === "fulfilled") fillStats(stats, statsRes.value);
    else toastError(statsRes.reason, "Loading statistics failed");
    if (timeline && timelineRes.status === "fulfilled") fillTimeline(timeline, timelineRes.value, form);
    else if (timeline) toastError(timelineRes.reason, "Loading the timeline failed");
    await listing;
    markUpdated();
  }

  async function loadPage() {
    const query = { view: "summary", state: spec.state || filters.state, type: filters.type, q: filters.q,
      limit: PAGE_SIZE, offset: (filters.page - 1) * PAGE_SIZE };
    let data;
    try {
      data = await api("GET", "/jobs", { query });
    } catch (err) {
      if (isCurrent()) toastError(err, "Loading jobs failed");
      return;
    }
    if (!isCurrent()) return;
    const { items, total } = data;
    if (items.length === 0 && total > 0 && filters.page > 1) {
      // The page emptied under us (jobs pruned or retried): step back to the last page.
      filters.page = Math.max(1, Math.ceil(total / PAGE_SIZE));
      history.replaceState(null, "", location.hash.replace(/([?&])page=\d+/, `$1page=${filters.page}`));
      return loadPage();
    }
    keepFocus(() => {
      tbody.replaceChildren(...items.map((job) => ROWS[mode](job, refresh)));
      pagerNav.replaceChildren(...pager({ page: filters.page, pageSize: PAGE_SIZE, total, go: (page) => {
        filters.page = page;
        saveFilters();
        refresh();
      } }));
    });
    wrap.hidden = items.length === 0;
    empty.hidden = items.length !== 0;
    searchNote.hidden = !filters.q;
  }

  setRefresh(refresh);
  loadJobTypes().then(() => isCurrent() && form.suggest()).catch((err) => toastError(err, "Loading job types failed"));
  refresh();
}

// ---------------------------------------------------------------------------------------------
// Stats strip and timeline

function statsStrip() {
  return h("ul", { class: "stats", "aria-label": "Queue statistics" },
    STAT_ITEMS.map(([key, label, href]) => h("li", { class: `stat stat-${key}` },
      h("a", { href, class: "stat-link" }, h("span", { class: "stat-label" }, label),
        h("span", { class: "stat-value", "data-stat": key }, "–")))),
    h("li", { class: "stat stat-oldest" }, h("span", { class: "stat-label" }, "Oldest due"),
      h("span", { class: "stat-value", "data-stat": "oldest" }, "–")));
}

function fillStats(list, s) {
  const values = { ...s, due: Math.max(0, (s.queued ?? 0) - (s.scheduled ?? 0)) };
  for (const [key] of STAT_ITEMS) list.querySelector(`[data-stat="${key}"]`).textContent = String(values[key] ?? 0);
  list.querySelector('[data-stat="oldest"]').textContent = fmtDuration(s.oldestQueuedAgeSec);
}

function fillTimeline(section, data, form) {
  section.querySelector("#timeline-body").replaceChildren(
    h("div", { class: "timeline-grid" }, timelineChart(data.minutes), breakdownTable(data.types)));
  form.suggest(data.types.map((t) => t.type));
}

// ---------------------------------------------------------------------------------------------
// Filters

function filterForm(mode, filters, apply) {
  const stateSelect = h("select", { id: "filter-state", name: "state" },
    STATE_FILTERS.map(([value, label]) => h("option", { value, selected: value === filters.state }, label)));
  const typeInput = h("input", { id: "filter-type", name: "type", list: "type-suggestions", autocomplete: "off",
    spellcheck: "false", value: filters.type, placeholder: "any type", class: "mono",
    "aria-describedby": "filter-type-hint" });
  const suggestions = h("datalist", { id: "type-suggestions" });
  const search = h("input", { id: "filter-q", name: "q", type: "search", autocomplete: "off", spellcheck: "false",
    value: filters.q, placeholder: "id, type, error or payload text", maxlength: 200 });
  const element = h("form", { class: "filters", role: "search", "aria-label": "Filter jobs" },
    mode === "all" ? h("div", { class: "field" }, h("label", { for: "filter-state" }, "State"), stateSelect) : null,
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Type"), typeInput, suggestions,
      h("span", { class: "sr-only", id: "filter-type-hint" }, "Any type name, registered or not")),
    h("div", { class: "field field-wide" }, h("label", { for: "filter-q" }, "Search"), search),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary" }, "Apply filters"),
      h("button", { type: "button", onclick: () => {
        stateSelect.value = "";
        typeInput.value = "";
        search.value = "";
        element.requestSubmit();
      } }, "Reset")));
  element.addEventListener("submit", (ev) => {
    ev.preventDefault();
    apply({ state: stateSelect.value, type: typeInput.value.trim(), q: search.value.trim() });
  });
  const seen = new Set();
  /** Offer the registered types and any type seen in the breakdown (e.g. from a newer release). */
  function suggest(extra = []) {
    const before = seen.size;
    for (const t of [...knownJobTypes().map((x) => x.type), ...extra]) seen.add(t);
    if (seen.size === before && suggestions.childElementCount) return;
    suggestions.replaceChildren(...[...seen].sort().map((t) => h("option", { value: t })));
  }
  return { element, suggest };
}

// ---------------------------------------------------------------------------------------------
// Rows

function jobActions(job, refresh) {
  return h("div", { class: "row-actions" }, actionsFor(job).map((action) => jobActionButton(action, job, refresh)),
    cancelRequestedNote(job));
}

const ACTION_LABELS = { retry: "Retry", cancel: "Cancel", delete: "Delete" };

/** Retry, Cancel (queued or running) or Delete (finished) a job; also used by the detail view. */
export function jobActionButton(action, job, refresh, { small = true, keyPrefix = "" } = {}) {
  const label = ACTION_LABELS[action];
  const key = `${keyPrefix}${action}:${job.id}`;
  const others = Object.keys(ACTION_LABELS).filter((a) => a !== action).map((a) => `${keyPrefix}${a}:${job.id}`);
  const cls = [small ? "small" : "", action === "retry" ? (small ? "" : "primary") : "danger-outline"].join(" ").trim();
  return actionButton({ class: cls, "aria-label": `${label} job ${shortId(job.id)}` }, label, {
    key, refresh, errorContext: `${label} failed`,
    // After a retry the row offers Cancel instead; else the job's own link keeps the place.
    focusKeys: [key, ...others, `open:${job.id}`],
    run: async () => ((await confirmJobAction(action, job)) ? runJobAction(action, job, refresh) : null),
  });
}

function idLink(job) {
  return h("a", { href: `#/jobs/${job.id}`, class: "mono", title: job.id, "data-key": `open:${job.id}`,
    "aria-label": `Job ${job.id}` }, shortId(job.id));
}

function runAtCell(job) {
  const due = secondsUntil(job.runAt);
  if (job.state !== "queued") return cell("Run at", timeEl(job.runAt));
  return cell("Run at", timeEl(job.runAt), h("span", { class: "muted when" },
    due > 0 ? ` in ${fmtDuration(due)}` : " due"));
}

const ROWS = {
  all: (job, refresh) => h("tr", { "data-job-id": job.id, "data-state": job.state },
    cell("State", badge(displayState(job))),
    cell("Type", clip(job.type, { cls: "mono" })),
    cell("ID", idLink(job)),
    cell("Created", timeEl(job.createdAt)),
    runAtCell(job),
    cell("Attempts", `${job.attempts} / ${job.maxAttempts}`),
    cell("Last error", job.lastError
      ? h("span", { class: "error-text", title: job.lastError }, truncate(job.lastError, 90))
      : h("span", { class: "muted" }, "—")),
    cell("Actions", jobActions(job, refresh))),
  running: (job, refresh) => h("tr", { "data-job-id": job.id, "data-state": job.state },
    cell("Type", clip(job.type, { cls: "mono" })),
    cell("ID", idLink(job)),
    cell("Worker", job.workerId
      ? h("a", { href: "#/workers", title: "All workers" }, clip(job.workerId, { cls: "mono" }))
      : h("span", { class: "muted" }, "—")),
    cell("Started", timeEl(job.lastRunAt)),
    cell("Elapsed", h("span", { class: "elapsed" }, job.lastRunAt ? fmtDuration(-secondsUntil(job.lastRunAt)) : "—")),
    cell("Attempt", `${job.attempts} / ${job.maxAttempts}`),
    cell("Lease until", timeEl(job.leaseUntil)),
    cell("Actions", jobActions(job, refresh))),
  scheduled: (job, refresh) => h("tr", { "data-job-id": job.id, "data-state": job.state },
    cell("Type", clip(job.type, { cls: "mono" })),
    cell("ID", idLink(job)),
    runAtCell(job),
    cell("Created", timeEl(job.createdAt)),
    cell("Attempts", `${job.attempts} / ${job.maxAttempts}`),
    cell("Actions", jobActions(job, refresh))),
};
