// "Why is this job (not) running?": the reasons GET /jobs/{id}/explain gives, each with its code and
// what to do, as a panel of the job detail. Re-rendered only when the answer changes.

import { api } from "./api.js";
import { h } from "./ui.js";

// Reasons that mean "something is in the way" are shown as warnings; the rest as information.
const BLOCKING = new Set(["queue_paused", "queue_at_limit", "no_live_worker_for_queue",
  "no_live_worker_with_handler", "all_workers_busy", "locked_by_transaction",
  "lease_expired_awaiting_recovery", "failed"]);

/** A panel element with `refresh()`: fetch the job's explanation and show it. */
export function explainPanel(id) {
  const list = h("ul", { class: "reasons", id: "explain-reasons", "aria-live": "polite" },
    h("li", { class: "muted" }, "Loading…"));
  const panel = h("section", { class: "card explain", id: "job-explain", "aria-labelledby": "explain-title" },
    h("h2", { id: "explain-title" }, "Why is it (not) running?"), list);
  let shown = null;
  panel.refresh = async () => {
    let data;
    try {
      data = await api("GET", `/jobs/${encodeURIComponent(id)}/explain`);
    } catch (err) {
      if (err.handled) return;
      list.replaceChildren(h("li", { class: "form-error" }, `Could not explain this job: ${err.message}`));
      shown = null;
      return;
    }
    const text = JSON.stringify(data.reasons);
    if (text === shown) return;
    shown = text;
    list.replaceChildren(...data.reasons.map(reasonItem));
  };
  return panel;
}

function reasonItem(r) {
  return h("li", { class: `reason ${BLOCKING.has(r.code) ? "reason-blocking" : "reason-info"}`, "data-code": r.code },
    h("code", { class: "reason-code" }, r.code), " ", h("span", { class: "reason-message" }, r.message));
}
