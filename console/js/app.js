// The console's shell: sign in, then a hash route per view (#/run, #/jobs, #/jobs/<id>, #/templates).
// The API key lives in sessionStorage only: never in a URL, never logged.

import { forgetKey, request, storedKey, storeKey } from "./api.js";
import { replace, showProblem } from "./dom.js";
import { jobView } from "./job.js";
import { jobsView } from "./jobs.js";
import { runView } from "./run.js";
import { templatesView } from "./templates.js";

const view = document.getElementById("view");
const signIn = document.getElementById("sign-in");
const nav = document.getElementById("nav");
const signOut = document.getElementById("sign-out");
let watcher = null;
let notice = null;
let generation = 0;

function navigate(hash, message = null) {
  notice = message;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function parse() {
  const [path, queryText = ""] = location.hash.replace(/^#/, "").split("?");
  return { parts: path.split("/").filter(Boolean), query: new URLSearchParams(queryText) };
}

async function route() {
  const mine = ++generation;
  if (watcher) {
    watcher.stop();
    watcher = null;
  }
  const signedIn = Boolean(storedKey());
  signIn.hidden = signedIn;
  nav.hidden = !signedIn;
  signOut.hidden = !signedIn;
  if (!signedIn) {
    replace(view);
    document.getElementById("api-key").focus();
    return;
  }
  const { parts, query } = parse();
  const section = parts[0] || "run";
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.route === section) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const message = notice;
  notice = null;
  const context = { navigate, query };
  if (section === "jobs" && parts[1]) {
    const opened = await jobView(view, { jobId: decodeURIComponent(parts[1]), notice: message });
    // Another route may have started while this one loaded: its watcher is the one to keep.
    if (opened && mine !== generation) opened.stop();
    else watcher = opened;
  } else if (section === "jobs") await jobsView(view, context);
  else if (section === "templates") await templatesView(view, context);
  else await runView(view, context);
  if (mine !== generation) return;
  const heading = view.querySelector("h1");
  // After a move between sections, focus goes to the new heading (as a page load would put it at the
  // top), unless the user is already working inside the view.
  const active = document.activeElement;
  if (heading && (active === document.body || nav.contains(active) || signIn.contains(active))) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: true });
  }
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("api-key");
  const box = document.getElementById("sign-in-error");
  const key = input.value.trim();
  box.hidden = true;
  if (!key) {
    showProblem(box, { problem: { title: "An API key is needed", detail: "Paste the key you were given." } });
    return;
  }
  try {
    // Any keyed route tells whether the key is accepted.
    await request("GET", "/v1/jobs?limit=1", { key });
  } catch (error) {
    showProblem(box, error);
    input.focus();
    return;
  }
  storeKey(key);
  input.value = "";
  route();
});

signOut.addEventListener("click", () => {
  forgetKey();
  location.hash = "";
  route();
});

window.addEventListener("hashchange", route);
route();
