// Job lifecycle actions beyond retry: cancel a running job, delete a finished one, bulk actions on
// what the current filter matches (counted by a dry run first, the count shown in the confirmation),
// and the stored result in the job detail.

import { api, ApiError } from "./api.js";
import { actionButton, confirmDialog, h, isInFlight, pretty, shortId } from "./ui.js";

export const FINISHED = new Set(["completed", "failed", "canceled"]);

const BULK = {
  retry: { label: "Retry", verb: "retried", rule: "failed or canceled" },
  cancel: { label: "Cancel", verb: "canceled", rule: "queued or running" },
  delete: { label: "Delete", verb: "deleted", rule: "completed, failed or canceled" },
};

// The owning daemon stops a running job within about a second of a cancel request.
const CANCEL_SETTLES_MS = 1500;

/**
 * The single-job request of an action, and the sentence shown when it succeeded. A cancel of a
 * running job is only a request (202): `refresh` runs once more when the daemon should be done.
 */
export async function runJobAction(action, job, refresh) {
  const path = `/jobs/${encodeURIComponent(job.id)}`;
  if (action === "delete") {
    await api("DELETE", path);
    return `Deleted job ${shortId(job.id)}.`;
  }
  const done = await api("POST", `${path}/${action}`);
  if (action === "cancel" && done.state === "running") {
    if (refresh) setTimeout(refresh, CANCEL_SETTLES_MS);
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

/** "cancel requested" beside a running job whose cancel the daemon has not carried out yet. */
export function cancelRequestedNote(job) {
  if (job.state !== "running" || !job.cancelRequestedAt) return null;
  return h("span", { class: "muted cancel-requested", title: `Requested ${job.cancelRequestedAt} (UTC)` },
    "cancel requested");
}

/**
 * Bulk buttons over the list's filter. The API filters by state and type (not by search text or
 * by due/scheduled), so the buttons say why they are off when the filter cannot be expressed.
 * Each button is one runAction: a dry run counts, the confirmation shows the count, the real run
 * reports how many changed; then the list refreshes and the focus goes back to the button.
 */
export function bulkBar(getFilters, refresh) {
  const note = h("span", { class: "hint", id: "bulk-note" });
  const buttons = Object.entries(BULK).map(([action, spec]) => actionButton({
    class: action === "retry" ? "small" : "small danger-outline", "data-bulk": action,
  }, `${spec.label} all matching`, {
    key: `bulk-${action}`, errorContext: `${spec.label} all matching failed`,
    run: () => runBulk(action),
    refresh: async () => {
      update(); // runAction re-enabled the button; the filter may not allow it any more
      await refresh();
    },
  }));
  const element = h("div", { class: "bulk-actions", role: "group", "aria-label": "Bulk actions on the filtered jobs",
    "aria-describedby": "bulk-note" }, ...buttons, note);

  function update() {
    const { why, filter } = bulkFilter(getFilters());
    // Say the scope: every matching job, not only the page on screen.
    note.textContent = why || `Acts on every job matching ${describe(filter)} (up to 10,000), not only this page.`;
    for (const b of buttons) b.disabled = Boolean(why) || isInFlight(b.dataset.key);
  }

  async function runBulk(action) {
    const { filter } = bulkFilter(getFilters());
    if (!filter) return null;
    const spec = BULK[action];
    const described = describe(filter);
    const dry = await bulkRequest(action, filter, true);
    if (dry.changed === 0) {
      return `No job to ${action}: ${matchText(dry.matched, described)}, none of them is ${spec.rule}.`;
    }
    const ok = await confirmDialog({
      title: `${spec.label} ${jobs(dry.changed)}?`, confirmLabel: `${spec.label} ${jobs(dry.changed)}`,
      message: `${matchText(dry.matched, described)}; ${dry.changed} of them ${dry.changed === 1 ? "is" : "are"} `
        + `${spec.rule} and will be ${spec.verb}.${action === "delete" ? " This cannot be undone." : ""}`,
    });
    if (!ok) return null;
    const done = await bulkRequest(action, filter, false);
    const moved = done.changed === dry.changed ? ""
      : ` The count was ${dry.changed}: jobs changed state in between.`;
    return `${jobs(done.changed)} ${spec.verb} (${done.matched} matched).${moved}`;
  }

  update();
  return { element, update };
}

/** {filter} for POST /jobs/bulk from the list's filters, or {why} it cannot be expressed. */
function bulkFilter(filters) {
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

/** POST /jobs/bulk; the API's bound on the jobs one action may touch is said in the list's words. */
async function bulkRequest(action, filter, dryRun) {
  try {
    return await api("POST", "/jobs/bulk", { body: { action, filter, dryRun } });
  } catch (err) {
    const bound = err instanceof ApiError && err.status === 400 && /more than ([\d,.\s]+) jobs/.exec(err.message);
    if (!bound) throw err;
    const max = bound[1].trim();
    throw new ApiError(400, `more than ${max} jobs match ${describe(filter)}, and one bulk action changes at `
      + `most ${max}. Narrow the filter (choose a state and a type) and try again; nothing was changed.`);
  }
}

const jobs = (n) => `${n} ${n === 1 ? "job" : "jobs"}`;
const matchText = (n, described) => `${jobs(n)} ${n === 1 ? "matches" : "match"} ${described}`;

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
  } else if (isTruncationMarker(job.result)) {
    const { bytes } = job.result;
    content = h("p", { class: "muted", id: "job-result-truncated" },
      `The handler returned ${bytes} bytes of JSON (${Math.round(bytes / 1024)} KiB), more than the 64 KiB `
      + "a stored result may take, so only its size was kept.");
  } else if (isUnserializableMarker(job.result)) {
    content = h("p", { class: "muted", id: "job-result-unserializable" },
      `The handler returned a value JSON cannot hold (a Python ${job.result.type}), so only its type was kept.`);
  } else {
    content = h("pre", { class: "code", id: "job-result", tabindex: "0", "aria-label": "Result (JSON)" },
      pretty(job.result));
  }
  return [h("h2", {}, "Result"), content];
}

// What the daemon stores instead of a return value over 64 KiB: {"truncated": true, "bytes": N}.
const isTruncationMarker = (r) => typeof r === "object" && r !== null && !Array.isArray(r)
  && r.truncated === true && Number.isInteger(r.bytes) && Object.keys(r).length === 2;
// ...and instead of one JSON cannot represent: {"unserializable": true, "type": "<Python type>"}.
const isUnserializableMarker = (r) => typeof r === "object" && r !== null && !Array.isArray(r)
  && r.unserializable === true && typeof r.type === "string" && Object.keys(r).length === 2;
