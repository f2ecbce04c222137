// A schedule's fire decisions (GET /schedules/{id}/history): one row per cron slot, newest first —
// enqueued (with its job and that job's state now), skipped_overlap or skipped_misfire.

import { api } from "./api.js";
import { badge, cell, h, shortId, table, zonedTimeEl } from "./ui.js";

const OUTCOME_TEXT = {
  enqueued: "enqueued",
  skipped_overlap: "skipped: previous job still running",
  skipped_misfire: "skipped: missed while no daemon ran",
};

/** A section element with `refresh(timezone)`. */
export function fireHistory(id) {
  const tbody = h("tbody", { id: "fire-history-body" });
  const wrap = h("div", { class: "table-wrap" }, table({ id: "fire-history", cls: "fire-history",
    caption: "Fire decisions of this schedule, newest slot first",
    columns: ["Slot", "Outcome", "Job", "Job state", "Decided"], tbody }));
  const empty = h("p", { class: "empty", id: "fire-history-empty", hidden: true },
    "No slot of this schedule has come yet.");
  const section = h("section", { id: "schedule-fires", "aria-labelledby": "fires-title" },
    h("h2", { id: "fires-title" }, "Fire history"), wrap, empty);
  section.refresh = async (timezone) => {
    const data = await api("GET", `/schedules/${encodeURIComponent(id)}/history`, { query: { limit: 50 } });
    tbody.replaceChildren(...data.items.map((f) => fireRow(f, timezone)));
    wrap.hidden = data.items.length === 0;
    empty.hidden = data.items.length !== 0;
  };
  return section;
}

function fireRow(f, timezone) {
  return h("tr", { "data-outcome": f.outcome, "data-slot": f.slotAt },
    cell("Slot", zonedTimeEl(f.slotAt, timezone)),
    cell("Outcome", h("span", { class: `outcome outcome-${f.outcome}` }, OUTCOME_TEXT[f.outcome] || f.outcome)),
    cell("Job", f.jobId
      ? h("a", { href: `#/jobs/${f.jobId}`, class: "mono", title: f.jobId, "aria-label": `Job ${f.jobId}` },
        shortId(f.jobId))
      : h("span", { class: "muted" }, "—")),
    cell("Job state", f.jobState ? badge(f.jobState) : h("span", { class: "muted" }, f.jobId ? "pruned" : "—")),
    cell("Decided", zonedTimeEl(f.decidedAt, timezone)));
}
