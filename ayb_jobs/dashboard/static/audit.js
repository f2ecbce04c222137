// Audit: every admin change (GET /audit), newest first, filterable by action, with who made it (the
// admin token's fingerprint and the client address) and a link to what it changed. The action
// filter and page live in the URL like the jobs view's.

import { api } from "./api.js";
import { pushViewState } from "./router.js";
import { cell, clip, h, keepFocus, pager, shortId, table, timeEl, toastError, truncate } from "./ui.js";
import { beginView, markUpdated, mount, setRefresh } from "./view.js";

export const PAGE_SIZE = 50;
// The actions known when this was written; any other action met in the log joins the filter too.
const KNOWN_ACTIONS = ["job.enqueue", "job.retry", "job.cancel", "job.delete", "job.bulk_retry", "job.bulk_cancel",
  "job.bulk_delete", "schedule.create", "schedule.update", "schedule.delete", "schedule.enable", "schedule.disable",
  "schedule.trigger"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function readFilters(params) {
  const page = Number.parseInt(params.get("page") || "1", 10);
  return { action: params.get("action") || "", page: Number.isInteger(page) && page > 0 ? page : 1 };
}

export function renderAudit({ params }) {
  const isCurrent = beginView();
  const filters = readFilters(params);
  const seen = new Set([...KNOWN_ACTIONS, filters.action].filter(Boolean));
  const select = h("select", { id: "audit-action", name: "action" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter the audit log" },
    h("div", { class: "field" }, h("label", { for: "audit-action" }, "Action"), select),
    h("div", { class: "filter-actions" }, h("button", { type: "submit", class: "primary" }, "Apply filter")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filters.action = select.value;
    filters.page = 1;
    save();
    refresh();
  });
  const tbody = h("tbody", { id: "audit-body" });
  const wrap = h("div", { class: "table-wrap" }, table({ id: "audit-table", cls: "audit-table",
    caption: "Admin changes, newest first", columns: ["At", "Action", "Target", "Actor", "From", "Detail"], tbody }));
  const empty = h("p", { class: "empty", id: "audit-empty", hidden: true }, "No admin change recorded yet.");
  const nav = h("nav", { class: "pager", "aria-label": "Pagination" });
  mount(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Audit log")),
    h("p", { class: "hint" }, "Actor is the first 12 hex digits of the SHA-256 of the admin token used."),
    form, wrap, empty, nav));
  fillActions();

  function fillActions() {
    const options = [...seen].sort().map((a) => h("option", { value: a, selected: a === filters.action }, a));
    select.replaceChildren(h("option", { value: "", selected: !filters.action }, "All actions"), ...options);
  }

  function save() {
    pushViewState("audit", { action: filters.action, page: filters.page > 1 ? filters.page : "" });
  }

  async function refresh() {
    let data;
    try {
      data = await api("GET", "/audit", { query: { action: filters.action, limit: PAGE_SIZE,
        offset: (filters.page - 1) * PAGE_SIZE } });
    } catch (err) {
      if (isCurrent()) toastError(err, "Loading the audit log failed");
      return;
    }
    if (!isCurrent()) return;
    const before = seen.size;
    for (const e of data.items) seen.add(e.action);
    if (seen.size !== before && document.activeElement !== select) fillActions();
    keepFocus(() => {
      tbody.replaceChildren(...data.items.map(auditRow));
      nav.replaceChildren(...pager({ page: filters.page, pageSize: PAGE_SIZE, total: data.total, go: (page) => {
        filters.page = page;
        save();
        refresh();
      } }));
    });
    wrap.hidden = data.items.length === 0;
    empty.hidden = data.items.length !== 0;
    markUpdated();
  }

  setRefresh(refresh);
  refresh();
}

/**
 * A link to the job or schedule an entry changed; plain text when there is nothing to open (a
 * deleted job or schedule, or a bulk action, whose detail holds its filter and counts).
 */
function targetCell(e) {
  if (!e.target) return h("span", { class: "muted" }, "—");
  const [kind, verb] = e.action.split(".", 2);
  const short = UUID.test(e.target) ? shortId(e.target) : e.target;
  const gone = verb === "delete" || (verb || "").startsWith("bulk") || !UUID.test(e.target);
  if (gone || (kind !== "job" && kind !== "schedule")) return h("span", { class: "mono", title: e.target }, short);
  const label = `${kind === "job" ? "Job" : "Schedule"} ${e.target}`;
  return h("a", { href: `#/${kind}s/${e.target}`, title: e.target, "aria-label": label },
    h("span", { class: "mono" }, short));
}

function detailText(detail) {
  if (!detail || Object.keys(detail).length === 0) return h("span", { class: "muted" }, "—");
  const full = JSON.stringify(detail);
  return h("code", { class: "audit-detail", title: full }, truncate(full, 120));
}

function auditRow(e) {
  return h("tr", { "data-audit-id": String(e.id), "data-action": e.action },
    cell("At", timeEl(e.at)),
    cell("Action", h("span", { class: "mono" }, e.action)),
    cell("Target", targetCell(e)),
    cell("Actor", e.actor ? h("span", { class: "mono" }, e.actor)
      : h("span", { class: "muted", title: "Made outside an admin request" }, "—")),
    cell("From", e.remoteAddr ? clip(e.remoteAddr, { cls: "mono" }) : h("span", { class: "muted" }, "—")),
    cell("Detail", detailText(e.detail)));
}
