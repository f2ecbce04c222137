// Create or edit a schedule: cron checked by the server as you type (its next 5 fire times shown in
// the schedule's zone), payload checked as JSON, and every error said in words.

import { SCHEDULE_NAME_RULE, api, knownJobTypes, loadJobTypes } from "./api.js";
import { field, fmtTime, h, pretty, toast, typeOptions } from "./ui.js";
import { beginView, mount } from "./view.js";

const PREVIEW_DEBOUNCE_MS = 300;
const SCHEDULE_NAME = /^[A-Za-z0-9_.:-]{1,100}$/;

/** Parse the payload text; returns {value} or {error}. */
export function parsePayload(text) {
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

export function renderScheduleForm({ id }) {
  const isCurrent = beginView();
  const editing = id !== null;
  const title = h("h1", { id: "view-title", tabindex: "-1" }, editing ? "Edit schedule" : "New schedule");
  const holder = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  mount(h("section", { class: "view narrow" },
    h("p", {}, h("a", { href: "#/schedules" }, "← All schedules")),
    h("div", { class: "view-head" }, title), holder));

  Promise.all([
    loadJobTypes(true),
    editing ? api("GET", `/schedules/${encodeURIComponent(id)}`) : Promise.resolve(null),
  ]).then(([, schedule]) => {
    if (!isCurrent()) return;
    if (schedule) title.textContent = `Edit schedule ${schedule.name}`;
    holder.replaceChildren(scheduleForm(schedule, isCurrent));
  }).catch((err) => {
    if (!isCurrent() || err.handled) return;
    holder.replaceChildren(h("p", { class: "form-error", role: "alert" }, err.message));
  });
}

/** Mark a control invalid (or valid) and put the message in its error element. */
function setError(control, errorEl, message) {
  errorEl.textContent = message || "";
  if (message) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
}

function controls(s, editing) {
  return {
    name: h("input", { id: "f-name", name: "name", required: true, maxlength: 100, autocomplete: "off",
      spellcheck: "false", value: s.name, readonly: editing, "aria-describedby": "f-name-hint name-error" }),
    nameError: h("p", { class: "field-error", id: "name-error" }),
    jobType: h("select", { id: "f-type", name: "jobType", required: true, disabled: editing,
      "aria-describedby": "f-type-hint" },
    editing ? [] : h("option", { value: "" }, "Choose a job type…"), typeOptions(s.jobType)),
    typeHint: h("p", { class: "hint", id: "f-type-hint" }),
    cronExpr: h("input", { id: "f-cron", name: "cronExpr", required: true, autocomplete: "off",
      spellcheck: "false", class: "mono", value: s.cronExpr, placeholder: "*/15 * * * *",
      "aria-describedby": "f-cron-hint cron-preview" }),
    timezone: h("input", { id: "f-tz", name: "timezone", list: "tz-list", autocomplete: "off",
      spellcheck: "false", value: s.timezone }),
    preview: h("div", { class: "preview", id: "cron-preview", "aria-live": "polite" }),
    payload: h("textarea", { id: "f-payload", name: "payload", rows: 6, class: "mono", spellcheck: "false",
      "aria-describedby": "payload-error" }),
    // Error lines keep their height when empty (.reserve), so showing one never moves the buttons
    // below it: a shift between mousedown and mouseup would swallow the click on Create.
    payloadError: h("p", { class: "field-error reserve", id: "payload-error" }),
    maxAttempts: h("input", { id: "f-max", name: "maxAttempts", type: "number", min: 1, max: 100, step: 1,
      required: true, value: s.maxAttempts, inputmode: "numeric", "aria-describedby": "max-error" }),
    maxError: h("p", { class: "field-error", id: "max-error" }),
    enabled: h("input", { id: "f-enabled", name: "enabled", type: "checkbox", checked: s.enabled }),
    overlap: h("select", { id: "f-overlap", name: "overlap", "aria-describedby": "f-overlap-hint" },
      h("option", { value: "allow", selected: s.overlap === "allow" }, "Allow: start a job at every slot"),
      h("option", { value: "skip", selected: s.overlap === "skip" },
        "Skip: no new job while the previous one is queued or running")),
    misfire: h("select", { id: "f-misfire", name: "misfire", "aria-describedby": "f-misfire-hint" },
      h("option", { value: "coalesce", selected: s.misfire === "coalesce" }, "Coalesce: one run for them all"),
      h("option", { value: "skip", selected: s.misfire === "skip" }, "Skip: no run for missed slots"),
      h("option", { value: "all", selected: s.misfire === "all" }, "All: one job per missed slot")),
    misfireMax: h("input", { id: "f-misfire-max", name: "misfireMax", type: "number", min: 1, max: 100, step: 1,
      value: s.misfireMax, inputmode: "numeric", "aria-describedby": "misfire-max-error" }),
    misfireMaxError: h("p", { class: "field-error", id: "misfire-max-error" }),
    formError: h("p", { class: "form-error", id: "form-error", role: "alert" }),
    submit: h("button", { type: "submit", class: "primary", id: "save-schedule" },
      editing ? "Save changes" : "Create schedule"),
  };
}

function scheduleForm(schedule, isCurrent) {
  const editing = schedule !== null;
  const s = { overlap: "allow", misfire: "coalesce", misfireMax: 10,
    ...(schedule || { name: "", jobType: "", cronExpr: "", timezone: "UTC", payload: {}, maxAttempts: 3,
      enabled: true }) };
  const c = controls(s, editing);
  c.payload.value = pretty(s.payload ?? {});

  const describeType = () => {
    const t = knownJobTypes().find((x) => x.type === c.jobType.value);
    c.typeHint.textContent = editing ? "The job type of a schedule cannot be changed."
      : t ? `${t.description || "No description."}${t.builtin ? " (built-in)" : ""}` : "";
  };
  c.jobType.addEventListener("change", describeType);
  describeType();

  const form = h("form", { class: "card schedule-form", id: "schedule-form", novalidate: true },
    field("f-name", "Name", c.name, h("p", { class: "hint", id: "f-name-hint" }, editing
      ? "The name of a schedule cannot be changed." : "Unique; letters, digits and _ . : - (up to 100)."), c.nameError),
    field("f-type", "Job type", c.jobType, c.typeHint),
    h("div", { class: "field-row" },
      field("f-cron", "Cron expression", c.cronExpr, h("p", { class: "hint", id: "f-cron-hint" },
        "Five fields: minute hour day-of-month month day-of-week.")),
      field("f-tz", "Timezone", c.timezone,
        h("datalist", { id: "tz-list" }, timezoneList().map((z) => h("option", { value: z }))))),
    c.preview,
    field("f-payload", "Payload (JSON object)", c.payload, c.payloadError),
    field("f-max", "Max attempts", c.maxAttempts, c.maxError),
    field("f-overlap", "While the previous job still runs", c.overlap, h("p", { class: "hint", id: "f-overlap-hint" },
      "Skipped slots are recorded in the schedule's fire history.")),
    h("div", { class: "field-row" },
      field("f-misfire", "Slots missed while no daemon ran", c.misfire, h("p", { class: "hint", id: "f-misfire-hint" },
        "A slot is missed when it is decided more than 10 s late (downtime).")),
      field("f-misfire-max", "Most missed runs", c.misfireMax, c.misfireMaxError)),
    h("div", { class: "field check" }, c.enabled, h("label", { for: "f-enabled" }, "Enabled")),
    c.formError,
    h("div", { class: "form-actions" }, c.submit, h("a", { href: "#/schedules", class: "button" }, "Cancel")));

  // A "Not saved: …" message is about the values that were sent: any change makes it stale.
  form.addEventListener("input", () => { c.formError.textContent = ""; });
  wirePreview(c, isCurrent);
  // "Most missed runs" only means something with "All".
  const syncMisfire = () => { c.misfireMax.disabled = c.misfire.value !== "all"; };
  c.misfire.addEventListener("change", syncMisfire);
  syncMisfire();
  const checks = wireChecks(c, editing);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit(c, schedule, checks);
  });
  return form;
}

/** Live cron preview from the server (it owns the cron dialect); stale answers are ignored. */
function wirePreview(c, isCurrent) {
  let seq = 0;
  let timer = null;
  const runPreview = async () => {
    const mine = ++seq;
    const expr = c.cronExpr.value.trim();
    if (!expr) {
      c.preview.replaceChildren(h("p", { class: "muted" }, "Enter a cron expression to see its next runs."));
      c.cronExpr.removeAttribute("aria-invalid");
      return;
    }
    const tz = c.timezone.value.trim() || "UTC";
    try {
      const data = await api("GET", "/cron/preview", { query: { expr, timezone: tz, count: 5 } });
      if (mine !== seq || !isCurrent()) return;
      c.cronExpr.removeAttribute("aria-invalid");
      c.preview.replaceChildren(h("p", { class: "preview-title" }, `Next 5 runs (${tz}):`),
        h("ol", { id: "cron-times" }, data.times.map((t) =>
          h("li", {}, h("time", { datetime: t, title: `${fmtTime(t)} (your time)` }, fmtTime(t, tz, { weekday: true }))))));
    } catch (err) {
      if (mine !== seq || !isCurrent() || err.handled) return;
      c.cronExpr.setAttribute("aria-invalid", "true");
      c.preview.replaceChildren(h("p", { class: "field-error", id: "cron-error" }, err.message));
    }
  };
  const schedulePreview = () => {
    clearTimeout(timer);
    timer = setTimeout(runPreview, PREVIEW_DEBOUNCE_MS);
  };
  c.cronExpr.addEventListener("input", schedulePreview);
  c.timezone.addEventListener("input", schedulePreview);
  runPreview();
}

function wireChecks(c, editing) {
  const checkName = () => {
    const value = c.name.value.trim();
    const error = editing || !value || SCHEDULE_NAME.test(value) ? "" : `Name ${SCHEDULE_NAME_RULE}.`;
    setError(c.name, c.nameError, error);
    return error;
  };
  const checkPayload = () => {
    const parsed = parsePayload(c.payload.value);
    setError(c.payload, c.payloadError, parsed.error);
    return parsed;
  };
  const checkMisfireMax = () => {
    const n = Number(c.misfireMax.value);
    const error = c.misfireMax.disabled || (Number.isInteger(n) && n >= 1 && n <= 100)
      ? "" : "Most missed runs must be a whole number from 1 to 100.";
    setError(c.misfireMax, c.misfireMaxError, error);
    return error ? null : n;
  };
  const checkMax = () => {
    const n = Number(c.maxAttempts.value);
    const error = Number.isInteger(n) && n >= 1 && n <= 100 ? "" : "Max attempts must be a whole number from 1 to 100.";
    setError(c.maxAttempts, c.maxError, error);
    return error ? null : n;
  };
  c.payload.addEventListener("blur", checkPayload);
  // Clear a shown error as soon as the text is fixed.
  c.name.addEventListener("input", () => c.nameError.textContent && checkName());
  c.payload.addEventListener("input", () => c.payloadError.textContent && checkPayload());
  return { checkName, checkPayload, checkMax, checkMisfireMax };
}

async function submit(c, schedule, { checkName, checkPayload, checkMax, checkMisfireMax }) {
  const editing = schedule !== null;
  const fail = (message, control) => {
    c.formError.textContent = message;
    control.focus();
  };
  c.formError.textContent = "";
  const nameError = checkName();
  const parsed = checkPayload();
  const max = checkMax();
  if (!editing && !c.name.value.trim()) return fail("Enter a name.", c.name);
  if (nameError) return fail(nameError, c.name);
  if (!editing && !c.jobType.value) return fail("Choose a job type.", c.jobType);
  if (!c.cronExpr.value.trim()) return fail("Enter a cron expression.", c.cronExpr);
  if (parsed.error) return fail(parsed.error, c.payload);
  if (max === null) return fail(c.maxError.textContent, c.maxAttempts);
  const misfireMax = checkMisfireMax();
  if (misfireMax === null) return fail(c.misfireMaxError.textContent, c.misfireMax);
  const common = { cronExpr: c.cronExpr.value.trim(), timezone: c.timezone.value.trim() || "UTC",
    payload: parsed.value, enabled: c.enabled.checked, maxAttempts: max, overlap: c.overlap.value,
    misfire: c.misfire.value };
  if (c.misfire.value === "all") common.misfireMax = misfireMax;
  c.submit.disabled = true;
  try {
    const saved = editing
      ? await api("PUT", `/schedules/${schedule.id}`, { body: common })
      : await api("POST", "/schedules", { body: { name: c.name.value.trim(), jobType: c.jobType.value, ...common } });
    toast(`${editing ? "Saved" : "Created"} schedule ${saved.name}.`);
    location.hash = "#/schedules";
  } catch (err) {
    if (!err.handled) c.formError.textContent = `Not saved: ${err.message}`;
  } finally {
    c.submit.disabled = false;
  }
}
