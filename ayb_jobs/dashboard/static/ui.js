// DOM and formatting helpers shared by the views. All DOM is built here with createElement and
// textContent: API data (payloads, error texts) never goes through innerHTML, so the strict CSP holds.

import { knownJobTypes } from "./api.js";

/** Create an element: h("button", {type: "button", onclick: f}, "text", child...). */
export function h(tag, attrs = {}, ...children) {
  return build(document.createElement(tag), attrs, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** The same for SVG elements (the chart). */
export function svg(tag, attrs = {}, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.setAttribute("class", value);
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

export const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------------------------------------
// Times: every time shown says which zone it is in.

export const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const formatters = new Map();

function formatter(zone, withWeekday) {
  const key = `${zone}|${withWeekday}`;
  if (!formatters.has(key)) {
    formatters.set(key, new Intl.DateTimeFormat(undefined, {
      weekday: withWeekday ? "short" : undefined, year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: withWeekday ? undefined : "2-digit",
      timeZone: zone, timeZoneName: "short",
    }));
  }
  return formatters.get(key);
}

/** "Dec 03, 2026, 11:40:12 AM UTC": in `zone` (default: the browser's), always with its label. */
export function fmtTime(iso, zone = browserZone, { weekday = false } = {}) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  try {
    return formatter(zone, weekday).format(d);
  } catch {
    return formatter(browserZone, weekday).format(d); // an unknown zone name: the browser's, labelled
  }
}

/** A <time> in the browser's zone (labelled), with the exact UTC value as a tooltip. */
export function timeEl(iso, { zone = browserZone, weekday = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: iso, title: `${iso} (UTC)` }, fmtTime(iso, zone, { weekday }));
}

/** A time in a schedule's own zone, and below it the same instant in the browser's zone. */
export function zonedTimeEl(iso, zone) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const main = h("time", { datetime: iso, title: `${iso} (UTC)` }, fmtTime(iso, zone, { weekday: true }));
  if (zone === browserZone) return main;
  return h("span", { class: "zoned" }, main,
    h("span", { class: "muted local-time" }, `${fmtTime(iso, browserZone, { weekday: true })} (your time)`));
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

/** Seconds from now to `iso` by the browser's clock (negative: in the past). */
export const secondsUntil = (iso) => (new Date(iso).getTime() - Date.now()) / 1000;

// The last 8 hex digits: job ids are time-ordered (UUID v7), so their first digits are shared by
// every job created in the same minute; the tail is random.
export const shortId = (id) => String(id).slice(-8);

export function truncate(text, max) {
  if (!text) return "";
  return text.length > max ? text.slice(0, max) + "…" : text;
}

export const pretty = (value) => JSON.stringify(value, null, 2);

/** Text that may be long (a 100-character type or name): one line, ellipsized, full text as tooltip. */
export function clip(text, { cls = "", tag = "span" } = {}) {
  return h(tag, { class: `clip ${cls}`.trim(), title: text }, text);
}

// ---------------------------------------------------------------------------------------------
// Tables and badges

/** A table cell; the label shows above the value when tables stack on narrow screens. */
export function cell(label, ...content) {
  return h("td", { "data-label": label }, h("div", { class: "cell-body" }, ...content));
}

export function table({ id, caption, columns, tbody, cls = "" }) {
  return h("table", { class: `data ${cls}`.trim(), id },
    h("caption", { class: "sr-only" }, caption),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    tbody);
}

/** A queued job whose run_at is still ahead shows as "scheduled": queued, but not due yet. */
export function displayState(job) {
  if (job.state === "queued" && secondsUntil(job.runAt) > 0) return "scheduled";
  return job.state;
}

export function badge(state) {
  return h("span", { class: `badge badge-${state}` }, state);
}

/** <option>s of the registered types, keeping an unregistered `selected` one visible. */
export function typeOptions(selected, { allLabel = null } = {}) {
  const opts = allLabel === null ? [] : [h("option", { value: "" }, allLabel)];
  const types = knownJobTypes();
  for (const t of types) opts.push(h("option", { value: t.type, selected: t.type === selected }, t.type));
  if (selected && !types.some((t) => t.type === selected)) {
    opts.push(h("option", { value: selected, selected: true }, selected));
  }
  return opts;
}

/**
 * Previous / "51–100 of 240" / Next, for a list paged by `pageSize` with `total` items; `go(page)`
 * shows another page. Returns the nodes to put in a <nav class="pager">.
 */
export function pager({ page, pageSize, total, go }) {
  const offset = (page - 1) * pageSize;
  const from = total === 0 ? 0 : offset + 1;
  const to = Math.min(total, offset + pageSize);
  return [
    h("button", { type: "button", "data-key": "page-prev", disabled: page <= 1, onclick: () => go(page - 1) },
      "Previous"),
    h("span", { class: "pager-status", id: "pager-status" }, `${from}–${to} of ${total}`),
    h("button", { type: "button", "data-key": "page-next", disabled: to >= total, onclick: () => go(page + 1) },
      "Next"),
  ];
}

// ---------------------------------------------------------------------------------------------
// Toasts and confirmation

export function toast(message, { error = false, link = null } = {}) {
  // The same error on every auto-refresh (e.g. a 503) is shown once, not stacked every 5 s.
  const shown = [...document.querySelectorAll("#toasts .toast-text")].some((t) => t.textContent === message);
  if (error && shown) return;
  const box = h("div", { class: `toast ${error ? "toast-error" : "toast-ok"}`, role: error ? "alert" : "status" },
    h("span", { class: "toast-text" }, message));
  if (link) box.append(" ", h("a", { href: link.href, onclick: () => box.remove() }, link.text));
  box.append(h("button", { type: "button", class: "toast-close", "aria-label": "Dismiss notification",
    onclick: () => box.remove() }, "×"));
  $("#toasts").append(box);
  setTimeout(() => box.remove(), error ? 10000 : 6000);
}

export function toastError(err, context) {
  if (err && err.handled) return; // a 401 already went back to the login screen
  const message = err instanceof Error ? err.message : String(err);
  toast(context ? `${context}: ${message}` : message, { error: true });
}

/** Show the confirmation dialog; resolves true only if the user confirms. */
export function confirmDialog({ title, message, confirmLabel }) {
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
// Focus

/** Re-render while keeping keyboard focus on the "same" control (by its data-key). */
export function keepFocus(render) {
  const key = document.activeElement?.dataset?.key;
  render();
  if (key) focusFirst([key]);
}

/** Focus the first enabled element carrying one of `keys` (data-key), else the view's title. */
export function focusFirst(keys) {
  for (const key of keys) {
    const el = key && document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (el && !el.disabled) {
      el.focus();
      return el;
    }
  }
  $("#view-title")?.focus();
  return null;
}

const focusLost = () => !document.activeElement || document.activeElement === document.body;

// ---------------------------------------------------------------------------------------------
// The one action: disable, call, toast, refresh, put the focus back.

const inFlight = new Set(); // "retry:<id>" etc.: buttons stay disabled across re-renders

export const isInFlight = (key) => inFlight.has(key);
export const clearInFlight = () => inFlight.clear();

/**
 * Run a button's action once at a time: the button is disabled while `run` is in flight, its result
 * (a message, or {message, link}) becomes a toast, an error becomes an error toast (with
 * `errorContext`), then `refresh` runs. The focus, which a disabled button loses, goes back to the
 * first of `focusKeys` still on screen (default: the button's own key).
 */
export async function runAction({ key, button, run, refresh, errorContext, focusKeys }) {
  if (inFlight.has(key)) return;
  inFlight.add(key);
  if (button) button.disabled = true;
  try {
    const result = await run();
    if (typeof result === "string") toast(result);
    else if (result) toast(result.message, { link: result.link });
  } catch (err) {
    toastError(err, errorContext);
  } finally {
    inFlight.delete(key);
    if (button) button.disabled = false;
    await refresh?.();
    if (focusLost()) focusFirst(focusKeys || [key]);
  }
}

/** A button wired to runAction; `options` are runAction's (key is also the button's data-key). */
export function actionButton(attrs, label, options) {
  const btn = h("button", { type: "button", "data-key": options.key, disabled: inFlight.has(options.key),
    ...attrs }, label);
  btn.addEventListener("click", () => runAction({ ...options, button: btn }));
  return btn;
}

// ---------------------------------------------------------------------------------------------
// Forms

export function field(id, label, control, ...extra) {
  return h("div", { class: "field" }, h("label", { for: id }, label), control, ...extra);
}
