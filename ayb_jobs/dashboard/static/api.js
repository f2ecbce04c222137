// The admin API client: the token kept in this tab's sessionStorage, errors as ApiError carrying the
// server's message, reworded where the server still speaks its validation library's language.

const API = "/api/admin";
const TOKEN_KEY = "ayb-jobs.admin-token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const getToken = () => sessionStorage.getItem(TOKEN_KEY) || "";
export const setToken = (token) => sessionStorage.setItem(TOKEN_KEY, token);
export const clearToken = () => sessionStorage.removeItem(TOKEN_KEY);

let onUnauthorized = () => {};
/** What to do when a call made with the session's token gets a 401 (sign out, with the message). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

const FIELD_LABELS = {
  name: "Name", jobType: "Job type", cronExpr: "Cron expression", expr: "Cron expression",
  timezone: "Timezone", payload: "Payload", maxAttempts: "Max attempts", enabled: "Enabled",
  type: "Type", q: "Search", state: "State", limit: "Page size", offset: "Page",
  overlap: "While the previous job still runs", misfire: "Missed slots", misfireMax: "Most missed runs",
};

// Validation phrases as they come from pydantic, and what an operator should read instead.
const PHRASES = [
  [/^String should match pattern .*$/, "contains characters that are not allowed"],
  [/^String should have at most (\d+) characters?$/, "is too long (at most $1 characters)"],
  [/^String should have at least (\d+) characters?$/, "is too short (at least $1 characters)"],
  [/^Input should be a valid integer.*$/, "must be a whole number"],
  [/^Input should be greater than or equal to (\S+)$/, "must be at least $1"],
  [/^Input should be less than or equal to (\S+)$/, "must be at most $1"],
  [/^Input should be a valid boolean.*$/, "must be true or false"],
  [/^Input should be a valid string.*$/, "must be text"],
  [/^Input should be a valid dictionary.*$/, "must be a JSON object"],
  [/^Input should be (.*)$/, "must be $1"],
];

const NAME_RULE = "may use only letters, digits and _ . : - (no spaces), up to 100 characters";

/** "field 'name': String should match pattern '…'" -> "Name may use only letters, …". */
export function humanize(message) {
  const m = /^(?:field|query parameter|path parameter) '([^']+)': (.*)$/s.exec(message);
  if (!m) return message;
  const [, field, reason] = m;
  const label = FIELD_LABELS[field] || `'${field}'`;
  if (field === "name" && reason.startsWith("String should match pattern")) return `${label} ${NAME_RULE}.`;
  for (const [pattern, words] of PHRASES) {
    if (pattern.test(reason)) return `${label} ${reason.replace(pattern, words)}.`;
  }
  return `${label}: ${reason}`;
}

export const SCHEDULE_NAME_RULE = NAME_RULE;

async function readError(res) {
  try {
    const body = await res.json();
    if (body && typeof body.message === "string") return humanize(body.message);
  } catch { /* not JSON: fall through */ }
  return `${res.status} ${res.statusText || "error"}`.trim();
}

/** Call the admin API; throws ApiError with the server's message. A 401 signs the user out. */
export async function api(method, path, { query, body, token } = {}) {
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
      onUnauthorized(`Your session ended: ${err.message}. Enter the admin token again.`);
    }
    throw err;
  }
  return res.json();
}

let jobTypes = null;

/** The registered job types, sorted (cached until `force` or sign-out). */
export async function loadJobTypes(force = false) {
  if (jobTypes && !force) return jobTypes;
  const data = await api("GET", "/job-types");
  jobTypes = [...data.items].sort((a, b) => a.type.localeCompare(b.type));
  return jobTypes;
}

export const knownJobTypes = () => jobTypes || [];
export const forgetJobTypes = () => { jobTypes = null; };
