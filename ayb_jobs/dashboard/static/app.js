// ayb-jobs admin dashboard: a dependency-free single-page app over /api/admin, as native ES modules
// (no build step). This module signs in and out, routes by URL hash and runs the auto-refresh.
//   api.js            the API client and its error messages
//   ui.js             DOM, time-zone-labelled times, toasts, the one action helper
//   router.js         hash routes with filters in the URL
//   view.js           the view on screen and its refresh
//   health.js         the Postgres health banner above every view
//   lifecycle.js      job actions (retry, cancel, delete), bulk actions with a dry run, results
//   jobs.js, job.js, chart.js, schedules.js, schedule-form.js, queues.js, workers.js, audit.js   the views

import { api, clearToken, forgetJobTypes, getToken, setToken, setUnauthorizedHandler } from "./api.js";
import { renderAudit } from "./audit.js";
import { hideHealth, refreshHealth } from "./health.js";
import { renderJobDetail } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderQueues } from "./queues.js";
import { forgetLocation, isNewLocation, parseRoute, section } from "./router.js";
import { renderScheduleForm } from "./schedule-form.js";
import { renderScheduleDetail, renderSchedules } from "./schedules.js";
import { $, clearInFlight, h, toast } from "./ui.js";
import { beginView, currentRefresh } from "./view.js";
import { renderWorkers } from "./workers.js";

const PAUSE_KEY = "ayb-jobs.refresh-paused";
const REFRESH_MS = 5000;

const VIEWS = {
  jobs: renderJobs, job: renderJobDetail, schedules: renderSchedules, schedule: renderScheduleDetail,
  "schedule-form": renderScheduleForm, queues: renderQueues, workers: renderWorkers, audit: renderAudit,
};

// ---------------------------------------------------------------------------------------------
// Session

function signOut(message = "") {
  clearToken();
  forgetJobTypes();
  clearInFlight();
  forgetLocation();
  hideHealth();
  renderLogin(message);
}

function renderLogin(message = "") {
  beginView();
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
    setToken(token);
    route({ force: true });
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
// Routing

function route({ force = false } = {}) {
  if (!isNewLocation() && !force) return;
  if (!getToken()) {
    renderLogin();
    return;
  }
  const r = parseRoute();
  $("#topbar").hidden = false;
  const current = section(r);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  VIEWS[r.name](r);
  $("#view-title")?.focus({ preventScroll: false });
  refreshHealth();
}

// ---------------------------------------------------------------------------------------------
// Auto-refresh: every few seconds, unless paused, hidden, or the user is selecting text (a
// re-render would clear the selection under the pointer).

const isPaused = () => sessionStorage.getItem(PAUSE_KEY) === "1";
let refreshing = false;
let pointerDown = false;

function isSelectingText() {
  if (pointerDown) return true;
  const selection = document.getSelection();
  return Boolean(selection && !selection.isCollapsed && $("#main").contains(selection.anchorNode));
}

async function tick() {
  if (isPaused() || document.hidden || !getToken()) return;
  refreshHealth(); // outside #main: it cannot disturb a selection there
  const refresh = currentRefresh();
  if (!refresh || refreshing || isSelectingText()) return;
  refreshing = true;
  try {
    await refresh({ auto: true });
  } finally {
    refreshing = false;
  }
}

function renderPauseToggle() {
  $("#pause-toggle").textContent = isPaused() ? "Resume auto-refresh" : "Pause auto-refresh";
}

function start() {
  setUnauthorizedHandler(signOut);
  $("#logout").addEventListener("click", () => signOut("Signed out."));
  $("#pause-toggle").addEventListener("click", () => {
    sessionStorage.setItem(PAUSE_KEY, isPaused() ? "0" : "1");
    renderPauseToggle();
    toast(isPaused() ? "Auto-refresh paused." : "Auto-refresh resumed.");
    if (!isPaused()) tick();
  });
  $("#skip-link").addEventListener("click", () => ($("#view-title") || $("#main")).focus());
  document.addEventListener("pointerdown", () => { pointerDown = true; });
  document.addEventListener("pointerup", () => { pointerDown = false; });
  renderPauseToggle();
  window.addEventListener("hashchange", () => route());
  window.addEventListener("popstate", () => route());
  setInterval(tick, REFRESH_MS);
  route({ force: true });
}

start();
