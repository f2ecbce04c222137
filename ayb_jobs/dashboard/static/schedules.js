// Schedules: the list (toggle, run now, edit, delete) and one schedule with the jobs it enqueued.
// Fire times are shown in the schedule's own timezone, labelled, with the browser's time beside.

import { api } from "./api.js";
import { fireHistory } from "./fire-history.js";
import {
  actionButton, badge, cell, clip, confirmDialog, displayState, h, keepFocus, shortId, table, timeEl,
  toastError, truncate, zonedTimeEl,
} from "./ui.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

const HISTORY_SIZE = 20;

export function renderSchedules() {
  const isCurrent = beginView();
  const tbody = h("tbody", { id: "schedules-body" });
  const list = table({ id: "schedules-table", cls: "schedules-table", caption: "Schedules",
    columns: ["Name", "Job type", "Cron", "Last run", "Next run", "Enabled", "Actions"], tbody });
  const empty = h("p", { class: "empty", hidden: true }, "No schedules yet.");
  const wrap = h("div", { class: "table-wrap" }, list);
  mount(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Schedules"),
      h("a", { href: "#/schedules/new", class: "button primary", "data-key": "new-schedule" }, "New schedule")),
    wrap, empty));

  async function refresh() {
    let data;
    try {
      data = await api("GET", "/schedules");
    } catch (err) {
      if (isCurrent()) toastError(err, "Loading schedules failed");
      return;
    }
    if (!isCurrent()) return;
    const items = [...data.items].sort((a, b) => a.name.localeCompare(b.name));
    keepFocus(() => tbody.replaceChildren(...items.map((s, i) => scheduleRow(s, refresh, items[i + 1], items[i - 1]))));
    wrap.hidden = items.length === 0;
    empty.hidden = items.length !== 0;
    markUpdated();
  }

  setRefresh(refresh);
  refresh();
}

function toggleButton(s, refresh) {
  return actionButton({ role: "switch", "aria-checked": String(s.enabled), class: `switch ${s.enabled ? "on" : "off"}`,
    "aria-label": `Enabled: ${s.name}` }, s.enabled ? "On" : "Off", {
    key: `toggle:${s.id}`, refresh,
    run: async () => {
      await api("POST", `/schedules/${s.id}/${s.enabled ? "disable" : "enable"}`);
      return `${s.enabled ? "Disabled" : "Enabled"} schedule ${s.name}.`;
    },
  });
}

function runNowButton(s, refresh) {
  return actionButton({ class: "small", "aria-label": `Run now: ${s.name}` }, "Run now", {
    key: `trigger:${s.id}`, refresh, errorContext: "Run now failed",
    run: async () => {
      const job = await api("POST", `/schedules/${s.id}/trigger`);
      return { message: `Started job ${job.id} from ${s.name}.`, link: { href: `#/jobs/${job.id}`, text: "View job" } };
    },
  });
}

/** Delete after confirming; the focus then goes to the next row's Delete (or the previous one's). */
function deleteButton(s, refresh, { next, prev, after } = {}) {
  return actionButton({ class: "small danger-outline", "aria-label": `Delete ${s.name}` }, "Delete", {
    key: `delete:${s.id}`, refresh, errorContext: "Delete failed",
    focusKeys: [`delete:${s.id}`, next && `delete:${next.id}`, prev && `delete:${prev.id}`, "new-schedule"],
    run: async () => {
      const ok = await confirmDialog({ title: `Delete schedule ${s.name}?`,
        message: "It will stop firing. Jobs it already enqueued are kept. This cannot be undone.",
        confirmLabel: "Delete schedule" });
      if (!ok) return null;
      await api("DELETE", `/schedules/${s.id}`);
      after?.();
      return `Deleted schedule ${s.name}.`;
    },
  });
}

function scheduleRow(s, refresh, next, prev) {
  return h("tr", { "data-schedule-id": s.id, "data-name": s.name },
    cell("Name", h("a", { href: `#/schedules/${s.id}`, class: "schedule-name", "data-key": `open-schedule:${s.id}`,
      "aria-label": `Schedule ${s.name}` }, clip(s.name, { tag: "strong" }))),
    cell("Job type", clip(s.jobType, { cls: "mono" })),
    cell("Cron", h("code", {}, s.cronExpr), " ", h("span", { class: "muted" }, s.timezone)),
    cell("Last run", zonedTimeEl(s.lastRunAt, s.timezone)),
    cell("Next run", s.enabled ? zonedTimeEl(s.nextRunAt, s.timezone) : h("span", { class: "muted" }, "disabled")),
    cell("Enabled", toggleButton(s, refresh)),
    cell("Actions", h("div", { class: "row-actions" }, runNowButton(s, refresh),
      h("a", { href: `#/schedules/${s.id}/edit`, class: "button small", "data-key": `edit:${s.id}`,
        "aria-label": `Edit ${s.name}` }, "Edit"),
      deleteButton(s, refresh, { next, prev }))));
}

// ---------------------------------------------------------------------------------------------
// One schedule and its recent jobs

export function renderScheduleDetail({ id }) {
  const isCurrent = beginView();
  const title = h("h1", { id: "view-title", tabindex: "-1" }, "Schedule");
  const summary = h("div", { id: "schedule-detail" }, h("p", { class: "muted" }, "Loading…"));
  const tbody = h("tbody", { id: "schedule-jobs-body" });
  const jobs = table({ id: "schedule-jobs", cls: "schedule-jobs", caption: "Jobs this schedule enqueued, newest first",
    columns: ["State", "ID", "Created", "Finished", "Attempts", "Last error"], tbody });
  const empty = h("p", { class: "empty", id: "schedule-jobs-empty", hidden: true }, "This schedule has enqueued no jobs yet.");
  const more = h("p", { class: "hint", id: "schedule-jobs-total" });
  const wrap = h("div", { class: "table-wrap" }, jobs);
  const fires = fireHistory(id);
  mount(h("section", { class: "view" },
    h("p", {}, h("a", { href: "#/schedules" }, "← All schedules")),
    h("div", { class: "view-head" }, title), summary, fires,
    h("h2", {}, "Recent jobs"), wrap, empty, more));

  async function refresh() {
    let schedule;
    let page;
    try {
      [schedule, page] = await Promise.all([api("GET", `/schedules/${encodeURIComponent(id)}`),
        api("GET", "/jobs", { query: { scheduleId: id, view: "summary", limit: HISTORY_SIZE } })]);
      await fires.refresh(schedule.timezone);
    } catch (err) {
      if (!isCurrent() || err.handled) return;
      summary.replaceChildren(h("p", { class: "form-error", role: "alert" }, err.message));
      return;
    }
    if (!isCurrent()) return;
    title.replaceChildren("Schedule ", clip(schedule.name));
    keepFocus(() => {
      summary.replaceChildren(scheduleSummary(schedule, refresh));
      tbody.replaceChildren(...page.items.map(historyRow));
    });
    wrap.hidden = page.items.length === 0;
    empty.hidden = page.items.length !== 0;
    more.textContent = page.total > page.count ? `The ${page.count} newest of ${page.total} jobs.` : "";
    markUpdated();
  }

  setRefresh(refresh);
  refresh();
}

function scheduleSummary(s, refresh) {
  const item = (label, ...value) => h("div", {}, h("dt", {}, label), h("dd", {}, ...value));
  return h("div", {},
    h("div", { class: "detail-actions" }, runNowButton(s, refresh), toggleButton(s, refresh),
      h("a", { href: `#/schedules/${s.id}/edit`, class: "button", "data-key": `edit:${s.id}` }, "Edit"),
      deleteButton(s, refresh, { after: () => { location.hash = "#/schedules"; } })),
    h("dl", { class: "fields" },
      item("Job type", clip(s.jobType, { cls: "mono" })),
      item("Cron", h("code", {}, s.cronExpr), " ", h("span", { class: "muted" }, s.timezone)),
      item("Next run", s.enabled ? zonedTimeEl(s.nextRunAt, s.timezone) : h("span", { class: "muted" }, "disabled")),
      item("Last run", zonedTimeEl(s.lastRunAt, s.timezone)),
      item("Max attempts", String(s.maxAttempts)),
      item("Overlap", s.overlap === "skip" ? "skip a slot while the previous job runs" : "allow"),
      item("Missed slots", s.misfire === "all" ? `run each (at most ${s.misfireMax})`
        : s.misfire === "skip" ? "skip them" : "one run for them all (coalesce)"),
      item("ID", h("span", { class: "mono" }, s.id))));
}

function historyRow(job) {
  const finished = job.completedAt || job.canceledAt || (job.state === "failed" ? job.updatedAt : null);
  return h("tr", { "data-job-id": job.id, "data-state": job.state },
    cell("State", badge(displayState(job))),
    cell("ID", h("a", { href: `#/jobs/${job.id}`, class: "mono", title: job.id, "aria-label": `Job ${job.id}` },
      shortId(job.id))),
    cell("Created", timeEl(job.createdAt)),
    cell("Finished", timeEl(finished)),
    cell("Attempts", `${job.attempts} / ${job.maxAttempts}`),
    cell("Last error", job.lastError
      ? h("span", { class: "error-text", title: job.lastError }, truncate(job.lastError, 90))
      : h("span", { class: "muted" }, "—")));
}
