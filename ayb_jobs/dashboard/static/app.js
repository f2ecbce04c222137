// ayb-jobs admin dashboard: a dependency-free single-page app over /api/admin (SPEC §8, §12).
// Routing is by URL hash (#/jobs, #/jobs/<id>, #/schedules, #/schedules/new, #/schedules/<id>/edit)
// so the server only has to serve one page. All DOM is built with createElement/textContent:
// API data (payloads, error texts) never goes through innerHTML.

const API = "/api/admin";
const TOKEN_KEY = "ayb-jobs.admin-token";
const PAUSE_KEY = "ayb-jobs.refresh-paused";
const PAGE_SIZE = 50;
const REFRESH_MS = 5000;
const PREVIEW_DEBOUNCE_MS = 300;
const STATES = ["queued", "running", "completed", "failed", "canceled"];

const state = {
  jobFilters: { state: "", type: "" },
  jobOffset: 0,
  jobTypes: null, // [{type, builtin, description}] once loaded
  inFlight: new Set(), // "retry:<id>" etc.: buttons stay disabled across re-renders
  view: null, // {refresh?: () => Promise<void>}
  generation: 0, // bumped on navigation; late responses of an old view are dropped
  refreshing: false,
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Create an element: h("button", {type: "button", onclick: f}, "text", child...). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

const dateFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFmt.format(d);
}

/** A <time> element showing local time, with the exact UTC value as a tooltip. */
function timeEl(iso) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: iso }, fmtTime(iso));
}

/** Fire time as seen in the schedule's own timezone (falls back to local for unknown zones). */
function fmtInZone(iso, zone) {
  try {
    return new Intl.DateTimeFormat(undefined, {
      weekday: "short", year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", timeZone: zone || "UTC", timeZoneName: "short",
    }).format(new Date(iso));
  } catch {
    return fmtTime(iso);
  }
}

/** 192.4 -> "3m 12s"; 0 -> "0s"; large values keep the two largest units. */
export function fmtDuration(seconds) {
  let s = Math.max(0, Math.floor(Number(seconds) || 0));
  const units = [["d", 86400], ["h", 3600], ["m", 60], ["s", 1]];
  const parts = [];
  for (const [name, size] of units) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || (parts.length === 0 && name === "s")) parts.push(`${n}${name}`);
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

const shortId = (id) => String(id).slice(0, 8);

function truncate(text, max) {
  if (!text) return "";
  return text.length > max ? text.slice(0, max) + "…" : text;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

// ---------------------------------------------------------------------------------------------
// API access

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function readError(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return body.message;
  } catch { /* not JSON: fall through */ }
  return `${res.status} ${res.statusText || "error"}`.trim();
}

/** Call the admin API; throws ApiError with the server's message. A 401 signs the user out. */
async function api(method, path, { query, body, token } = {}) {
  const url = new URL(API + path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== "" && v !== undefined && v !== null) url.searchParams.set(k, v);
  }
  const headers = { Accept: "application/json", Authorization: `Bearer ${token ?? getToken()}` };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `cannot reach the daemon (${err.message}); is it running?`);
  }
  if (res.status === 204) return null;
  if (!res.ok) {
    const err = new ApiError(res.status, await readError(res));
    if (res.status === 401 && token === undefined) {
      err.handled = true;
      signOut(`Your session ended: ${err.message}. Enter the admin token again.`);
    }
    throw err;
  }
  return res.json();
}

async function loadJobTypes(force = false) {
  if (state.jobTypes && !force) return state.jobTypes;
  const data = await api("GET", "/job-types");
  state.jobTypes = [...data.items].sort((a, b) => a.type.localeCompare(b.type));
  return state.jobTypes;
}

// ---------------------------------------------------------------------------------------------
// Toasts and confirmation

function toast(message, { error = false, link = null } = {}) {
  // The same error on every auto-refresh (e.g. a 503) is shown once, not stacked every 5 s.
  const shown = [...document.querySelectorAll("#toasts .toast-text")].some((t) => t.textContent === message);
  if (error && shown) return;
  const box = h("div", { class: `toast ${error ? "toast-error" : "toast-ok"}`, role: error ? "alert" : "status" },
    h("span", { class: "toast-text" }, message));
  if (link) box.append(" ", h("a", { href: link.href, onclick: () => box.remove() }, link.text));
  const close = h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss notification",
    onclick: () => box.remove() }, "×");
  box.append(close);
  $("#toasts").append(box);
  setTimeout(() => box.remove(), error ? 10000 : 6000);
}

function toastError(err, context) {
  if (err && err.handled) return; // a 401 already went back to the login screen
  const message = err instanceof Error ? err.message : String(err);
  toast(context ? `${context}: ${message}` : message, { error: true });
}

/** Show the confirmation dialog; resolves true only if the user confirms. */
function confirmDialog({ title, message, confirmLabel }) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title").textContent = title;
  $("#confirm-message").textContent = message;
  $("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true });
    dialog.showModal();
  });
}

// ---------------------------------------------------------------------------------------------
// Session

function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function signOut(message = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  state.jobTypes = null;
  state.inFlight.clear();
  renderLogin(message);
}

function renderLogin(message = "") {
  state.generation += 1;
  state.view = null;
  $("#topbar").hidden = true;
  const error = h("p", { class: "form-error", id: "login-error", role: "alert" }, message);
  const input = h("input", { type: "password", id: "token", name: "token", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "login-help login-error" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", { class: "card login-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "token" }, "Admin token"), input,
      h("p", { class: "hint", id: "login-help" },
        "The daemon's admin.token, or the contents of its token file. Kept only in this browser tab.")),
    error, h("div", { class: "form-actions" }, submit));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      error.textContent = "Enter the admin token.";
      input.focus();
      return;
    }
    submit.disabled = true;
    error.textContent = "";
    try {
      await checkToken(token);
    } catch (err) {
      error.textContent = err.status === 401 ? `Sign-in failed: ${err.message}` : err.message;
      input.select();
      return;
    } finally {
      submit.disabled = false;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    route();
  });
  $("#main").replaceChildren(h("section", { class: "login" },
    h("h1", { id: "view-title", tabindex: "-1" }, "ayb-jobs admin"), form));
  input.focus();
}

/** Accept the token unless the API rejects it (401) or cannot be reached. */
async function checkToken(token) {
  try {
    await api("GET", "/job-types", { token });
  } catch (err) {
    if (err.status === 401 || err.status === 0) throw err;
    toast(err.message, { error: true }); // e.g. 503: signed in, but the server has a problem
  }
}

// ---------------------------------------------------------------------------------------------
// Routing and auto-refresh

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "schedules") {
    if (parts[1] === "new") return { name: "schedule-form", id: null };
    if (parts[1] && parts[2] === "edit") return { name: "schedule-form", id: parts[1] };
    return { name: "schedules" };
  }
  if (parts[0] === "jobs" && parts[1]) return { name: "job", id: parts[1] };
  return { name: "jobs" };
}

function route() {
  if (!getToken()) {
    renderLogin();
    return;
  }
  const r = parseRoute();
  state.generation += 1;
  state.view = null;
  $("#topbar").hidden = false;
  for (const a of document.querySelectorAll("[data-nav]")) {
    const current = r.name.startsWith("schedule") ? "schedules" : "jobs";
    if (a.dataset.nav === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const views = { jobs: renderJobs, job: renderJobDetail, schedules: renderSchedules,
    "schedule-form": renderScheduleForm };
  views[r.name](r);
  const title = $("#view-title");
  if (title) title.focus({ preventScroll: false });
}

/** Is `gen` still the view on screen? Late responses of a view the user left are dropped. */
const current = (gen) => gen === state.generation;

function isPaused() {
  return sessionStorage.getItem(PAUSE_KEY) === "1";
}

function renderPauseToggle() {
  const btn = $("#pause-toggle");
  btn.textContent = isPaused() ? "Resume auto-refresh" : "Pause auto-refresh";
}

async function tick() {
  if (isPaused() || document.hidden || !state.view?.refresh || state.refreshing) return;
  state.refreshing = true;
  try {
    await state.view.refresh();
  } finally {
    state.refreshing = false;
  }
}

function markUpdated() {
  $("#updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

/** Re-render while keeping keyboard focus on the "same" control (by its data-key). */
function keepFocus(render) {
  const key = document.activeElement?.dataset?.key;
  render();
  if (key) {
    const again = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (again && !again.disabled) again.focus();
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs list

const STAT_ITEMS = [
  ["queued", "Queued"], ["scheduled", "Scheduled"], ["running", "Running"], ["completed", "Completed"],
  ["failed", "Failed"], ["canceled", "Canceled"],
];

/** A table cell; the label shows above the value when tables stack on narrow screens. */
function cell(label, ...content) {
  return h("td", { "data-label": label }, h("div", { class: "cell-body" }, ...content));
}

function badge(jobState) {
  return h("span", { class: `badge badge-${jobState}` }, jobState);
}

function typeOptions(selected, { allLabel = null } = {}) {
  const opts = allLabel === null ? [] : [h("option", { value: "" }, allLabel)];
  const types = state.jobTypes || [];
  for (const t of types) opts.push(h("option", { value: t.type, selected: t.type === selected }, t.type));
  if (selected && !types.some((t) => t.type === selected)) {
    opts.push(h("option", { value: selected, selected: true }, selected)); // keep an unregistered type visible
  }
  return opts;
}

function renderJobs() {
  const gen = state.generation;
  const stats = h("ul", { class: "stats", "aria-label": "Queue statistics" },
    [...STAT_ITEMS, ["oldest", "Oldest due"]].map(([key, label]) =>
      h("li", { class: `stat stat-${key}` }, h("span", { class: "stat-label" }, label),
        h("span", { class: "stat-value", "data-stat": key }, "–"))));

  const stateSelect = h("select", { id: "filter-state", name: "state" },
    h("option", { value: "" }, "All states"),
    STATES.map((s) => h("option", { value: s, selected: s === state.jobFilters.state }, s)));
  const typeSelect = h("select", { id: "filter-type", name: "type" },
    typeOptions(state.jobFilters.type, { allLabel: "All types" }));
  const filters = h("form", { class: "filters", "aria-label": "Filter jobs" },
    h("div", { class: "field" }, h("label", { for: "filter-state" }, "State"), stateSelect),
    h("div", { class: "field" }, h("label", { for: "filter-type" }, "Type"), typeSelect),
    h("div", { class: "filter-actions" },
      h("button", { type: "submit", class: "primary" }, "Apply filters"),
      h("button", { type: "button", onclick: () => {
        stateSelect.value = "";
        typeSelect.value = "";
        filters.requestSubmit();
      } }, "Reset")));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.jobFilters = { state: stateSelect.value, type: typeSelect.value };
    state.jobOffset = 0;
    refresh();
  });

  const tbody = h("tbody", { id: "jobs-body" });
  tbody.addEventListener("click", onJobAction);
  const table = h("table", { class: "data jobs-table", id: "jobs-table" },
    h("caption", { class: "sr-only" }, "Jobs, newest first"),
    h("thead", {}, h("tr", {}, ["State", "Type", "ID", "Created", "Attempts", "Last error", "Actions"]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const empty = h("p", { class: "empty", id: "jobs-empty", hidden: true }, "No jobs match these filters.");
  const pager = h("nav", { class: "pager", "aria-label": "Pagination" });

  $("#main").replaceChildren(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Jobs")),
    stats, filters, h("div", { class: "table-wrap" }, table), empty, pager));

  async function refresh() {
    const query = { ...state.jobFilters, limit: PAGE_SIZE, offset: state.jobOffset };
    const [statsRes, listRes] = await Promise.allSettled([
      api("GET", "/jobs/stats"), api("GET", "/jobs", { query }),
    ]);
    if (!current(gen)) return;
    if (statsRes.status === "fulfilled") renderStats(stats, statsRes.value);
    else toastError(statsRes.reason, "Loading statistics failed");
    if (listRes.status === "fulfilled") {
      const { items, total } = listRes.value;
      if (items.length === 0 && total > 0 && state.jobOffset > 0) {
        // The page emptied under us (jobs pruned or retried): step back to the last page.
        state.jobOffset = Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return refresh();
      }
      keepFocus(() => {
        tbody.replaceChildren(...items.map(jobRow));
        renderPager(pager, total, refresh);
      });
      table.hidden = items.length === 0;
      empty.hidden = items.length !== 0;
    } else {
      toastError(listRes.reason, "Loading jobs failed");
    }
    markUpdated();
  }

  async function onJobAction(ev) {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    const { action, id } = btn.dataset;
    const key = `${action}:${id}`;
    if (state.inFlight.has(key)) return;
    state.inFlight.add(key);
    btn.disabled = true;
    try {
      const job = await api("POST", `/jobs/${encodeURIComponent(id)}/${action}`);
      const verb = action === "retry" ? "Retried" : "Canceled";
      toast(`${verb} job ${shortId(id)}; it is now ${job.state}.`);
    } catch (err) {
      toastError(err, `${action === "retry" ? "Retry" : "Cancel"} failed`);
    } finally {
      state.inFlight.delete(key);
      if (current(gen)) await refresh();
    }
  }

  state.view = { refresh };
  loadJobTypes().then(() => {
    if (current(gen)) typeSelect.replaceChildren(...typeOptions(state.jobFilters.type, { allLabel: "All types" }));
  }).catch((err) => toastError(err, "Loading job types failed"));
  refresh();
}

function renderStats(list, s) {
  for (const [key] of STAT_ITEMS) $(`[data-stat="${key}"]`, list).textContent = String(s[key] ?? 0);
  $('[data-stat="oldest"]', list).textContent = fmtDuration(s.oldestQueuedAgeSec);
}

function actionButton(action, job) {
  const label = action === "retry" ? "Retry" : "Cancel";
  const key = `${action}:${job.id}`;
  return h("button", { type: "button", class: action === "cancel" ? "small danger-outline" : "small",
    "data-action": action, "data-id": job.id, "data-key": key, disabled: state.inFlight.has(key),
    "aria-label": `${label} job ${shortId(job.id)}` }, label);
}

function jobRow(job) {
  const actions = [];
  if (job.state === "failed" || job.state === "canceled") actions.push(actionButton("retry", job));
  if (job.state === "queued") actions.push(actionButton("cancel", job));
  return h("tr", { "data-job-id": job.id, "data-state": job.state },
    cell("State", badge(job.state)),
    cell("Type", h("span", { class: "mono" }, job.type)),
    cell("ID", h("a", { href: `#/jobs/${job.id}`, class: "mono", title: job.id, "data-key": `open:${job.id}`,
      "aria-label": `Job ${job.id}` }, shortId(job.id))),
    cell("Created", timeEl(job.createdAt)),
    cell("Attempts", `${job.attempts} / ${job.maxAttempts}`),
    cell("Last error", job.lastError
      ? h("span", { class: "error-text", title: job.lastError }, truncate(job.lastError, 90))
      : h("span", { class: "muted" }, "—")),
    cell("Actions", h("div", { class: "row-actions" }, actions)));
}

function renderPager(pager, total, refresh) {
  const from = total === 0 ? 0 : state.jobOffset + 1;
  const to = Math.min(total, state.jobOffset + PAGE_SIZE);
  const go = (offset) => {
    state.jobOffset = offset;
    refresh();
  };
  pager.replaceChildren(
    h("button", { type: "button", "data-key": "page-prev", disabled: state.jobOffset === 0,
      onclick: () => go(Math.max(0, state.jobOffset - PAGE_SIZE)) }, "Previous"),
    h("span", { class: "pager-status", id: "pager-status" }, `${from}–${to} of ${total}`),
    h("button", { type: "button", "data-key": "page-next", disabled: to >= total,
      onclick: () => go(state.jobOffset + PAGE_SIZE) }, "Next"));
}

// ---------------------------------------------------------------------------------------------
// Job detail

const JOB_FIELDS = [
  ["id", "ID"], ["type", "Type"], ["state", "State"], ["attempts", "Attempts"], ["maxAttempts", "Max attempts"],
  ["runAt", "Run at"], ["createdAt", "Created"], ["updatedAt", "Updated"], ["lastRunAt", "Last run"],
  ["leaseUntil", "Lease until"], ["workerId", "Worker"], ["completedAt", "Completed"],
  ["canceledAt", "Canceled"], ["idempotencyKey", "Idempotency key"], ["scheduleId", "Schedule"],
  ["lastError", "Last error"],
];
const TIME_FIELDS = new Set(["runAt", "createdAt", "updatedAt", "lastRunAt", "leaseUntil", "completedAt",
  "canceledAt"]);

function renderJobDetail({ id }) {
  const gen = state.generation;
  const body = h("div", { id: "job-detail" }, h("p", { class: "muted" }, "Loading…"));
  $("#main").replaceChildren(h("section", { class: "view" },
    h("p", {}, h("a", { href: "#/jobs" }, "← All jobs")),
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, `Job ${shortId(id)}`)),
    body));
  let shownVersion = null;

  async function refresh() {
    let job;
    try {
      job = await api("GET", `/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!current(gen)) return;
      if (err.handled) return;
      body.replaceChildren(h("p", { class: "form-error", role: "alert" }, err.message));
      shownVersion = null;
      return;
    }
    if (!current(gen)) return;
    markUpdated();
    // Only re-render on change, so that text the user is selecting (e.g. the payload) stays put.
    const version = `${job.updatedAt}|${job.state}|${job.attempts}`;
    if (version === shownVersion) return;
    shownVersion = version;
    keepFocus(() => body.replaceChildren(...jobDetail(job, act)));
  }

  async function act(action, btn) {
    const key = `${action}:${id}`;
    state.inFlight.add(key);
    btn.disabled = true;
    try {
      const job = await api("POST", `/jobs/${encodeURIComponent(id)}/${action}`);
      toast(`${action === "retry" ? "Retried" : "Canceled"} job ${shortId(id)}; it is now ${job.state}.`);
    } catch (err) {
      toastError(err, `${action === "retry" ? "Retry" : "Cancel"} failed`);
    } finally {
      state.inFlight.delete(key);
      shownVersion = null;
      if (current(gen)) await refresh();
    }
  }

  state.view = { refresh };
  refresh();
}

function jobDetail(job, act) {
  const actions = [];
  for (const [action, label, allowed] of [["retry", "Retry", ["failed", "canceled"]], ["cancel", "Cancel", ["queued"]]]) {
    if (!allowed.includes(job.state)) continue;
    const key = `${action}:${job.id}`;
    const btn = h("button", { type: "button", "data-key": `detail-${key}`, disabled: state.inFlight.has(key),
      class: action === "cancel" ? "danger-outline" : "primary" }, label);
    btn.addEventListener("click", () => act(action, btn));
    actions.push(btn);
  }
  const fields = h("dl", { class: "fields" });
  for (const [key, label] of JOB_FIELDS) {
    if (job[key] === undefined || job[key] === null) continue;
    let value = String(job[key]);
    if (key === "state") value = badge(job.state);
    else if (TIME_FIELDS.has(key)) value = timeEl(job[key]);
    else if (key === "id" || key === "scheduleId" || key === "workerId") value = h("span", { class: "mono" }, value);
    else if (key === "lastError") value = h("pre", { class: "error-text wrap" }, value);
    fields.append(h("div", { class: key === "lastError" ? "full" : null }, h("dt", {}, label), h("dd", {}, value)));
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
    actions.length ? h("div", { class: "detail-actions" }, actions) : null,
    h("h2", {}, "Fields"), fields,
    h("h2", {}, "Payload"), h("pre", { class: "code", id: "job-payload", tabindex: "0",
      "aria-label": "Payload (JSON)" }, pretty(job.payload ?? {})),
    h("h2", {}, "Error history"), errorsTable,
  ].filter(Boolean);
}

// ---------------------------------------------------------------------------------------------
// Schedules list

function renderSchedules() {
  const gen = state.generation;
  const tbody = h("tbody", { id: "schedules-body" });
  const table = h("table", { class: "data schedules-table", id: "schedules-table" },
    h("caption", { class: "sr-only" }, "Schedules"),
    h("thead", {}, h("tr", {}, ["Name", "Job type", "Cron", "Last run", "Next run", "Enabled", "Actions"]
      .map((c) => h("th", { scope: "col" }, c)))),
    tbody);
  const empty = h("p", { class: "empty", hidden: true }, "No schedules yet.");
  $("#main").replaceChildren(h("section", { class: "view" },
    h("div", { class: "view-head" }, h("h1", { id: "view-title", tabindex: "-1" }, "Schedules"),
      h("a", { href: "#/schedules/new", class: "button primary" }, "New schedule")),
    h("div", { class: "table-wrap" }, table), empty));

  async function refresh() {
    let data;
    try {
      data = await api("GET", "/schedules");
    } catch (err) {
      if (current(gen)) toastError(err, "Loading schedules failed");
      return;
    }
    if (!current(gen)) return;
    const items = [...data.items].sort((a, b) => a.name.localeCompare(b.name));
    keepFocus(() => tbody.replaceChildren(...items.map((s) => scheduleRow(s, refresh))));
    table.hidden = items.length === 0;
    empty.hidden = items.length !== 0;
    markUpdated();
  }

  state.view = { refresh };
  refresh();
}

/** A button that is disabled while its request runs, then refreshes the list. */
function busyButton(key, attrs, label, run, refresh) {
  const btn = h("button", { type: "button", "data-key": key, disabled: state.inFlight.has(key), ...attrs }, label);
  btn.addEventListener("click", async () => {
    if (state.inFlight.has(key)) return;
    state.inFlight.add(key);
    btn.disabled = true;
    try {
      await run();
    } catch (err) {
      toastError(err);
    } finally {
      state.inFlight.delete(key);
      btn.disabled = false;
      await refresh();
    }
  });
  return btn;
}

function scheduleRow(s, refresh) {
  const toggle = busyButton(`toggle:${s.id}`, { role: "switch", "aria-checked": String(s.enabled),
    class: `switch ${s.enabled ? "on" : "off"}`, "aria-label": `Enabled: ${s.name}` },
  s.enabled ? "On" : "Off", async () => {
    await api("POST", `/schedules/${s.id}/${s.enabled ? "disable" : "enable"}`);
    toast(`${s.enabled ? "Disabled" : "Enabled"} schedule ${s.name}.`);
  }, refresh);
  const runNow = busyButton(`trigger:${s.id}`, { class: "small", "aria-label": `Run now: ${s.name}` }, "Run now",
    async () => {
      const job = await api("POST", `/schedules/${s.id}/trigger`);
      toast(`Started job ${job.id} from ${s.name}.`, { link: { href: `#/jobs/${job.id}`, text: "View job" } });
    }, refresh);
  const del = busyButton(`delete:${s.id}`, { class: "small danger-outline", "aria-label": `Delete ${s.name}` },
    "Delete", async () => {
      const ok = await confirmDialog({ title: `Delete schedule ${s.name}?`,
        message: "It will stop firing. Jobs it already enqueued are kept. This cannot be undone.",
        confirmLabel: "Delete schedule" });
      if (!ok) return;
      await api("DELETE", `/schedules/${s.id}`);
      toast(`Deleted schedule ${s.name}.`);
    }, refresh);
  return h("tr", { "data-schedule-id": s.id, "data-name": s.name },
    cell("Name", h("strong", {}, s.name)),
    cell("Job type", h("span", { class: "mono" }, s.jobType)),
    cell("Cron", h("code", {}, s.cronExpr), " ", h("span", { class: "muted" }, s.timezone)),
    cell("Last run", timeEl(s.lastRunAt)),
    cell("Next run", s.enabled ? timeEl(s.nextRunAt) : h("span", { class: "muted" }, "disabled")),
    cell("Enabled", toggle),
    cell("Actions", h("div", { class: "row-actions" }, runNow,
      h("a", { href: `#/schedules/${s.id}/edit`, class: "button small", "data-key": `edit:${s.id}`,
        "aria-label": `Edit ${s.name}` }, "Edit"), del)));
}

// ---------------------------------------------------------------------------------------------
// Schedule create / edit form

function field(id, label, control, ...extra) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, ...extra);
}

/** Parse the payload text; returns {value} or {error}. */
function parsePayload(text) {
  const src = text.trim() === "" ? "{}" : text;
  let value;
  try {
    value = JSON.parse(src);
  } catch (err) {
    return { error: `Payload is not valid JSON: ${err.message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { error: 'Payload must be a JSON object, e.g. {"retention_hours": 168}.' };
  }
  return { value };
}

function timezoneList() {
  try {
    return Intl.supportedValuesOf("timeZone");
  } catch {
    return ["UTC"];
  }
}

function renderScheduleForm({ id }) {
  const gen = state.generation;
  const editing = id !== null;
  const title = h("h1", { id: "view-title", tabindex: "-1" }, editing ? "Edit schedule" : "New schedule");
  const holder = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  $("#main").replaceChildren(h("section", { class: "view narrow" },
    h("p", {}, h("a", { href: "#/schedules" }, "← All schedules")),
    h("div", { class: "view-head" }, title), holder));

  const load = Promise.all([
    loadJobTypes(true),
    editing ? api("GET", `/schedules/${encodeURIComponent(id)}`) : Promise.resolve(null),
  ]);
  load.then(([, schedule]) => {
    if (!current(gen)) return;
    if (schedule) title.textContent = `Edit schedule ${schedule.name}`;
    holder.replaceChildren(scheduleForm(schedule, gen));
  }).catch((err) => {
    if (!current(gen) || err.handled) return;
    holder.replaceChildren(h("p", { class: "form-error", role: "alert" }, err.message));
  });
}

function scheduleForm(schedule, gen) {
  const editing = schedule !== null;
  const s = schedule || { name: "", jobType: "", cronExpr: "", timezone: "UTC", payload: {},
    maxAttempts: 3, enabled: true };
  const name = h("input", { id: "f-name", name: "name", required: true, maxlength: 100, autocomplete: "off",
    spellcheck: "false", value: s.name, readonly: editing, "aria-describedby": "f-name-hint" });
  const jobType = h("select", { id: "f-type", name: "jobType", required: true, disabled: editing,
    "aria-describedby": "f-type-hint" },
  editing ? [] : h("option", { value: "" }, "Choose a job type…"), typeOptions(s.jobType));
  const typeHint = h("p", { class: "hint", id: "f-type-hint" });
  const cronExpr = h("input", { id: "f-cron", name: "cronExpr", required: true, autocomplete: "off",
    spellcheck: "false", class: "mono", value: s.cronExpr, placeholder: "*/15 * * * *",
    "aria-describedby": "f-cron-hint cron-preview" });
  const timezone = h("input", { id: "f-tz", name: "timezone", list: "tz-list", autocomplete: "off",
    spellcheck: "false", value: s.timezone });
  const tzList = h("datalist", { id: "tz-list" }, timezoneList().map((z) => h("option", { value: z })));
  const preview = h("div", { class: "preview", id: "cron-preview", "aria-live": "polite" });
  const payload = h("textarea", { id: "f-payload", name: "payload", rows: 6, class: "mono", spellcheck: "false",
    "aria-describedby": "payload-error" });
  payload.value = pretty(s.payload ?? {});
  const payloadError = h("p", { class: "field-error", id: "payload-error" });
  const maxAttempts = h("input", { id: "f-max", name: "maxAttempts", type: "number", min: 1, max: 100, step: 1,
    required: true, value: s.maxAttempts, inputmode: "numeric", "aria-describedby": "max-error" });
  const maxError = h("p", { class: "field-error", id: "max-error" });
  const enabled = h("input", { id: "f-enabled", name: "enabled", type: "checkbox", checked: s.enabled });
  const formError = h("p", { class: "form-error", id: "form-error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary", id: "save-schedule" },
    editing ? "Save changes" : "Create schedule");

  const describeType = () => {
    const t = (state.jobTypes || []).find((x) => x.type === jobType.value);
    typeHint.textContent = editing ? "The job type of a schedule cannot be changed."
      : t ? `${t.description || "No description."}${t.builtin ? " (built-in)" : ""}` : "";
  };
  jobType.addEventListener("change", describeType);
  describeType();

  const form = h("form", { class: "card schedule-form", id: "schedule-form", novalidate: true },
    field("f-name", "Name", name, h("p", { class: "hint", id: "f-name-hint" }, editing
      ? "The name of a schedule cannot be changed." : "Unique; letters, digits and _ . : - (up to 100).")),
    field("f-type", "Job type", jobType, typeHint),
    h("div", { class: "field-row" },
      field("f-cron", "Cron expression", cronExpr, h("p", { class: "hint", id: "f-cron-hint" },
        "Five fields: minute hour day-of-month month day-of-week.")),
      field("f-tz", "Timezone", timezone, tzList)),
    preview,
    field("f-payload", "Payload (JSON object)", payload, payloadError),
    field("f-max", "Max attempts", maxAttempts, maxError),
    h("div", { class: "field check" }, enabled, h("label", { for: "f-enabled" }, "Enabled")),
    formError,
    h("div", { class: "form-actions" }, submit, h("a", { href: "#/schedules", class: "button" }, "Cancel")));

  // Live cron preview from the server (it owns the cron dialect); stale answers are ignored.
  let seq = 0;
  let timer = null;
  const runPreview = async () => {
    const mine = ++seq;
    const expr = cronExpr.value.trim();
    if (!expr) {
      preview.replaceChildren(h("p", { class: "muted" }, "Enter a cron expression to see its next runs."));
      cronExpr.removeAttribute("aria-invalid");
      return;
    }
    const tz = timezone.value.trim() || "UTC";
    try {
      const data = await api("GET", "/cron/preview", { query: { expr, timezone: tz, count: 5 } });
      if (mine !== seq || !current(gen)) return;
      cronExpr.removeAttribute("aria-invalid");
      preview.replaceChildren(h("p", { class: "preview-title" }, "Next 5 runs:"),
        h("ol", { id: "cron-times" }, data.times.map((t) =>
          h("li", {}, h("time", { datetime: t, title: `${fmtTime(t)} local` }, fmtInZone(t, tz))))));
    } catch (err) {
      if (mine !== seq || !current(gen) || err.handled) return;
      cronExpr.setAttribute("aria-invalid", "true");
      preview.replaceChildren(h("p", { class: "field-error", id: "cron-error" }, err.message));
    }
  };
  const schedulePreview = () => {
    clearTimeout(timer);
    timer = setTimeout(runPreview, PREVIEW_DEBOUNCE_MS);
  };
  cronExpr.addEventListener("input", schedulePreview);
  timezone.addEventListener("input", schedulePreview);
  runPreview();

  const checkPayload = () => {
    const parsed = parsePayload(payload.value);
    payloadError.textContent = parsed.error || "";
    if (parsed.error) payload.setAttribute("aria-invalid", "true");
    else payload.removeAttribute("aria-invalid");
    return parsed;
  };
  payload.addEventListener("blur", checkPayload);
  // Clear a shown error as soon as the text is fixed (not on blur: a layout shift there can move the
  // Save button away from under the pointer between mousedown and mouseup).
  payload.addEventListener("input", () => {
    if (payloadError.textContent) checkPayload();
  });

  const checkMax = () => {
    const n = Number(maxAttempts.value);
    const error = Number.isInteger(n) && n >= 1 ? "" : "Max attempts must be a whole number of at least 1.";
    maxError.textContent = error;
    if (error) maxAttempts.setAttribute("aria-invalid", "true");
    else maxAttempts.removeAttribute("aria-invalid");
    return error ? null : n;
  };

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formError.textContent = "";
    const parsed = checkPayload();
    const max = checkMax();
    if (!editing && !name.value.trim()) return fail("Enter a name.", name);
    if (!editing && !jobType.value) return fail("Choose a job type.", jobType);
    if (!cronExpr.value.trim()) return fail("Enter a cron expression.", cronExpr);
    if (parsed.error) return fail(parsed.error, payload);
    if (max === null) return fail(maxError.textContent, maxAttempts);
    const common = { cronExpr: cronExpr.value.trim(), timezone: timezone.value.trim() || "UTC",
      payload: parsed.value, enabled: enabled.checked, maxAttempts: max };
    submit.disabled = true;
    try {
      const saved = editing
        ? await api("PUT", `/schedules/${schedule.id}`, { body: common })
        : await api("POST", "/schedules", { body: { name: name.value.trim(), jobType: jobType.value, ...common } });
      toast(`${editing ? "Saved" : "Created"} schedule ${saved.name}.`);
      location.hash = "#/schedules";
    } catch (err) {
      if (!err.handled) formError.textContent = `Not saved: ${err.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  function fail(message, control) {
    formError.textContent = message;
    control.focus();
  }

  return form;
}

// ---------------------------------------------------------------------------------------------
// Start

function start() {
  $("#logout").addEventListener("click", () => signOut("Signed out."));
  $("#pause-toggle").addEventListener("click", () => {
    sessionStorage.setItem(PAUSE_KEY, isPaused() ? "0" : "1");
    renderPauseToggle();
    toast(isPaused() ? "Auto-refresh paused." : "Auto-refresh resumed.");
    if (!isPaused()) tick();
  });
  $("#skip-link").addEventListener("click", () => ($("#view-title") || $("#main")).focus());
  renderPauseToggle();
  window.addEventListener("hashchange", route);
  setInterval(tick, REFRESH_MS);
  route();
}

start();
