// Job lifecycle actions beyond retry: cancel a running job, delete a finished one, bulk actions on
// what the current filter matches (counted by a dry run first, the count shown in the confirmation),
// and the stored result in the job detail.

import { api } from "./api.js";
import { confirmDialog, h, pretty, shortId, toast, toastError } from "./ui.js";

export const FINISHED = new Set(["completed", "failed", "canceled"]);

const BULK = {
  retry: { label: "Retry", verb: "retried", rule: "failed or canceled" },
  cancel: { label: "Cancel", verb: "canceled", rule: "queued or running" },
  delete: { label: "Delete", verb: "deleted", rule: "completed, failed or canceled" },
};

/** The single-job request of an action, and the sentence shown when it succeeded. */
export async function runJobAction(action, job) {
  const path = `/jobs/${encodeURIComponent(job.id)}`;
  if (action === "delete") {
    await api("DELETE", path);
    return `Deleted job ${shortId(job.id)}.`;
  }
  const done = await api("POST", `${path}/${action}`);
  if (action === "cancel" && done.state === "running") {
    return `Cancel requested for job ${shortId(job.id)}; its daemon stops the handler within a second.`;
  }
  return `${action === "retry" ? "Retried" : "Canceled"} job ${shortId(job.id)}; it is now ${done.state}.`;
}

/** Ask before a delete (it cannot be undone); other single actions run at once. */
export async function confirmJobAction(action, job) {
  if (action !== "delete") return true;
  return confirmDialog({ title: "Delete job?", confirmLabel: "Delete",
    message: `Delete ${job.state} job ${shortId(job.id)} (${job.type})? This cannot be undone.` });
}

/** Which single actions a job in this state offers. */
export function actionsFor(job) {
  const state = job.state;
  const out = [];
  if (state === "failed" || state === "canceled") out.push("retry");
  if (state === "queued" || (state === "running" && !job.cancelRequestedAt)) out.push("cancel");
  if (FINISHED.has(state)) out.push("delete");
  return out;
}

/**
 * Bulk buttons over the list's filter. The API filters by state and type (not by search text or
 * by due/scheduled), so the buttons say why they are off when the filter cannot be expressed.
 */
export function bulkBar(getFilters, refresh) {
  const note = h("span", { class: "hint", id: "bulk-note" });
  const buttons = Object.entries(BULK).map(([action, spec]) => h("button", {
    type: "button", class: action === "retry" ? "small" : "small danger-outline", "data-key": `bulk-${action}`,
    "data-bulk": action, onclick: (ev) => runBulk(action, ev.currentTarget),
  }, `${spec.label} all matching`));
  const element = h("div", { class: "bulk-actions", role: "group", "aria-label": "Bulk actions on the filtered jobs",
    "aria-describedby": "bulk-note" }, ...buttons, note);

  function filterOf(filters) {
    if (filters.q) return { why: "Bulk actions use the state and type filters; clear the search to use them." };
    if (filters.state === "due" || filters.state === "scheduled") {
      return { why: "Bulk actions take a whole state; choose 'queued' instead of due or scheduled." };
    }
    const filter = {};
    if (filters.state) filter.state = filters.state;
    if (filters.type) filter.type = filters.type;
    if (!filter.state && !filter.type) return { why: "Filter by state or type to act on many jobs at once." };
    return { filter };
  }

  function update() {
    const { why } = filterOf(getFilters());
    note.textContent = why || "";
    for (const b of buttons) b.disabled = Boolean(why) || b.dataset.busy === "1";
  }

  async function runBulk(action, button) {
    const { filter } = filterOf(getFilters());
    if (!filter) return;
    const spec = BULK[action];
    button.dataset.busy = "1";
    update();
    try {
      const dry = await api("POST", "/jobs/bulk", { body: { action, filter, dryRun: true } });
      const described = describe(filter);
      if (dry.changed === 0) {
        toast(`No job to ${action}: ${dry.matched} match ${described}, none of them ${spec.rule}.`);
        return;
      }
      const ok = await confirmDialog({
        title: `${spec.label} ${dry.changed} jobs?`, confirmLabel: `${spec.label} ${dry.changed} jobs`,
        message: `${dry.matched} jobs match ${described}; ${dry.changed} of them are ${spec.rule} and will be `
          + `${spec.verb}.${action === "delete" ? " This cannot be undone." : ""}`,
      });
      if (!ok) return;
      const done = await api("POST", "/jobs/bulk", { body: { action, filter, dryRun: false } });
      toast(`${done.changed} jobs ${spec.verb} (${done.matched} matched).`);
      await refresh();
    } catch (err) {
      toastError(err, `${spec.label} all matching failed`);
    } finally {
      delete button.dataset.busy;
      update();
    }
  }

  update();
  return { element, update };
}

function describe(filter) {
  const parts = [];
  if (filter.state) parts.push(`state ${filter.state}`);
  if (filter.type) parts.push(`type ${filter.type}`);
  return parts.join(" and ");
}

/** The job detail's Result section: the handler's return value, or why there is none. */
export function resultSection(job) {
  let content;
  if (job.result === undefined || job.result === null) {
    content = h("p", { class: "muted", id: "job-result-none" },
      job.state === "completed" ? "The handler returned nothing." : "No result (the job has not completed).");
  } else if (job.result && job.result.truncated === true && Object.keys(job.result).length === 2) {
    content = h("p", { class: "muted", id: "job-result-truncated" },
      `The handler returned ${job.result.bytes} bytes of JSON, more than the 64 KiB kept; it was not stored.`);
  } else {
    content = h("pre", { class: "code", id: "job-result", tabindex: "0", "aria-label": "Result (JSON)" },
      pretty(job.result));
  }
  return [h("h2", {}, "Result"), content];
}
