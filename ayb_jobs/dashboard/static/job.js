// One job: its fields (with a link to the schedule that enqueued it), payload and error history.
// The list's rows are summaries; this view fetches the whole job.

import { api } from "./api.js";
import { explainPanel } from "./explain.js";
import { jobActionButton } from "./jobs.js";
import { actionsFor, cancelRequestedNote, resultSection } from "./lifecycle.js";
import {
  badge, cell, displayState, h, keepFocus, pretty, shortId, timeEl, toastError,
} from "./ui.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

const JOB_FIELDS = [
  ["id", "ID"], ["type", "Type"], ["state", "State"], ["attempts", "Attempts"], ["maxAttempts", "Max attempts"],
  ["runAt", "Run at"], ["createdAt", "Created"], ["updatedAt", "Updated"], ["lastRunAt", "Last run"],
  ["leaseUntil", "Lease until"], ["workerId", "Worker"], ["completedAt", "Completed"],
  ["canceledAt", "Canceled"], ["cancelRequestedAt", "Cancel requested"], ["snoozes", "Snoozes"],
  ["idempotencyKey", "Idempotency key"], ["uniqueKey", "Unique key"], ["scheduleId", "Schedule"],
  ["lastError", "Last error"],
];
const TIME_FIELDS = new Set(["runAt", "createdAt", "updatedAt", "lastRunAt", "leaseUntil", "completedAt",
  "canceledAt", "cancelRequestedAt"]);

export function renderJobDetail({ id }) {
  const isCurrent = beginView();
  const body = h("div", { id: "job-detail" }, h("p", { class: "muted" }, "Loading…"));
  const why = explainPanel(id);
  mount(h("section", { class: "view" },
    h("p", {}, h("a", { href: "#/jobs" }, "← All jobs")),
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, `Job ${shortId(id)}`)),
    why, body));
  let shownVersion = null;
  const scheduleNames = new Map();

  async function refresh({ force = false } = {}) {
    let job;
    try {
      job = await api("GET", `/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!isCurrent() || err.handled) return;
      body.replaceChildren(h("p", { class: "form-error", role: "alert" }, err.message));
      shownVersion = null;
      return;
    }
    if (job.scheduleId && !scheduleNames.has(job.scheduleId)) {
      const schedule = await api("GET", `/schedules/${job.scheduleId}`).catch(() => null);
      scheduleNames.set(job.scheduleId, schedule?.name ?? null);
    }
    if (!isCurrent()) return;
    await why.refresh();
    if (!isCurrent()) return;
    markUpdated();
    // Only re-render on change, so that text the user is selecting (e.g. the payload) stays put.
    const version = `${job.updatedAt}|${job.state}|${job.attempts}|${job.cancelRequestedAt}`;
    if (version === shownVersion && !force) return;
    shownVersion = version;
    keepFocus(() => body.replaceChildren(...jobDetail(job, scheduleNames.get(job.scheduleId),
      () => refresh({ force: true }))));
  }

  setRefresh(refresh);
  refresh().catch((err) => toastError(err));
}

function fieldValue(job, key, scheduleName) {
  const value = job[key];
  if (key === "state") return badge(displayState(job));
  if (TIME_FIELDS.has(key)) return timeEl(value);
  if (key === "scheduleId") {
    return h("a", { href: `#/schedules/${value}`, id: "job-schedule-link", "data-key": "schedule-link" },
      scheduleName ? scheduleName : h("span", { class: "mono" }, value));
  }
  if (key === "id" || key === "workerId") return h("span", { class: "mono" }, String(value));
  if (key === "lastError") return h("pre", { class: "error-text wrap" }, String(value));
  return String(value);
}

function jobDetail(job, scheduleName, refresh) {
  // A deleted job has no page left to show: go back to the list.
  const afterAction = async () => ((await jobStillThere(job.id)) ? refresh() : (location.hash = "#/jobs"));
  const actions = actionsFor(job).map((action) => jobActionButton(action, job, afterAction,
    { small: false, keyPrefix: "detail-" }));
  const fields = h("dl", { class: "fields" });
  for (const [key, label] of JOB_FIELDS) {
    if (job[key] === undefined || job[key] === null) continue;
    fields.append(h("div", { class: key === "lastError" ? "full" : null },
      h("dt", {}, label), h("dd", {}, fieldValue(job, key, scheduleName))));
  }
  const history = job.errors || [];
  const errorsTable = history.length === 0
    ? h("p", { class: "muted" }, "No errors recorded.")
    : h("div", { class: "table-wrap" }, h("table", { class: "data errors-table" },
      h("caption", { class: "sr-only" }, "Error history, one row per failed attempt"),
      h("thead", {}, h("tr", {}, ["Attempt", "At", "Worker", "Error"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, history.map((e) => h("tr", {},
        cell("Attempt", String(e.attempt ?? "")),
        cell("At", timeEl(e.at)),
        cell("Worker", h("span", { class: "mono" }, e.worker_id ?? e.workerId ?? "—")),
        cell("Error", h("pre", { class: "error-text wrap" }, e.error ?? "")))))));
  return [
    actions.length || job.cancelRequestedAt ? h("div", { class: "detail-actions" }, actions, cancelRequestedNote(job))
      : null,
    h("h2", {}, "Fields"), fields,
    h("h2", {}, "Payload"), h("pre", { class: "code", id: "job-payload", tabindex: "0",
      "aria-label": "Payload (JSON)" }, pretty(job.payload ?? {})),
    ...resultSection(job),
    h("h2", {}, "Error history"), errorsTable,
  ].filter(Boolean);
}

async function jobStillThere(id) {
  try {
    await api("GET", `/jobs/${encodeURIComponent(id)}`);
    return true;
  } catch (err) {
    return err.status !== 404;
  }
}
