// Routing by URL hash, with each view's filters and page in the hash's query part
// (#/jobs?state=failed&type=x&page=2), so a reload keeps them and a view can be shared as a link.

/** {path: ["jobs", "<id>"], params: URLSearchParams} of the current hash. */
export function currentLocation() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [pathPart, queryPart = ""] = raw.split("?", 2);
  const path = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  return { path, params: new URLSearchParams(queryPart) };
}

/** "#/jobs?state=failed" from a path and an object of params (empty values left out). */
export function hashFor(path, params = {}) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== "" && v !== undefined && v !== null) query.set(k, String(v));
  }
  const q = query.toString();
  return `#/${path}${q ? "?" + q : ""}`;
}

/**
 * Put a view's own state (filters, page) in the URL without re-rendering the view: a new history
 * entry, so Back returns to the previous filters.
 */
export function pushViewState(path, params) {
  const hash = hashFor(path, params);
  if (hash !== location.hash) history.pushState(null, "", hash);
  routed = location.hash;
}

let routed = null;

/** False when the URL is the one already on screen (Back fires both popstate and hashchange). */
export function isNewLocation() {
  if (location.hash === routed) return false;
  routed = location.hash;
  return true;
}

export function forgetLocation() {
  routed = null;
}

// Views with one route each, no id: #/<name>?filters. A new such view needs only its name here, its
// render function in app.js's VIEWS and a link in index.html's nav.
const SIMPLE_VIEWS = new Set(["queues", "workers", "audit"]);

export function parseRoute() {
  const { path, params } = currentLocation();
  const [top, id, sub] = path;
  if (SIMPLE_VIEWS.has(top)) return { name: top, params };
  if (top === "schedules") {
    if (id === "new") return { name: "schedule-form", id: null, params };
    if (id && sub === "edit") return { name: "schedule-form", id, params };
    if (id) return { name: "schedule", id, params };
    return { name: "schedules", params };
  }
  if (top === "running") return { name: "jobs", mode: "running", params };
  if (top === "scheduled") return { name: "jobs", mode: "scheduled", params };
  if (top === "jobs" && id) return { name: "job", id, params };
  return { name: "jobs", mode: "all", params };
}

/** The top-bar section a route belongs to. */
export function section(route) {
  if (SIMPLE_VIEWS.has(route.name)) return route.name;
  if (route.name.startsWith("schedule")) return "schedules";
  if (route.name === "jobs") return route.mode === "all" ? "jobs" : route.mode;
  return "jobs";
}
