// The view on screen: a generation number (late answers of a view the user left are dropped), its
// refresh function for auto-refresh, and the "Updated …" stamp.

import { $ } from "./ui.js";

let generation = 0;
let refresher = null;

/** Start a new view: returns `isCurrent()`, false once the user has navigated elsewhere. */
export function beginView() {
  generation += 1;
  refresher = null;
  const mine = generation;
  return () => mine === generation;
}

/** The function auto-refresh calls, with {auto: true}. */
export function setRefresh(fn) {
  refresher = fn;
}

export const currentRefresh = () => refresher;

export function mount(...nodes) {
  $("#main").replaceChildren(...nodes);
}

export function markUpdated() {
  $("#updated").textContent = `Updated ${new Date().toLocaleTimeString(undefined, { timeZoneName: "short" })}`;
}
