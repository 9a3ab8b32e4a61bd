// A tiny element builder: h("p", {class: "x"}, "text", child). Text is always set as text, never HTML.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

// A problem document as the API said it: title, detail, and each error with its pointer, node and input.
export function problemView(problem, { skip = () => false } = {}) {
  const errors = (problem.errors || []).filter((error) => !skip(error));
  return [
    h("p", { class: "problem-title" }, problem.title || "Error", problem.status ? ` (${problem.status})` : ""),
    problem.detail ? h("p", { class: "problem-detail" }, problem.detail) : null,
    errors.length
      ? h("ul", { class: "problem-errors" }, errors.map((error) => h("li", {}, errorWhere(error), error.detail)))
      : null,
  ];
}

export function errorWhere(error) {
  const parts = [];
  if (error.pointer) parts.push(h("code", {}, error.pointer));
  if (error.node_id) parts.push(`node ${error.node_id}`);
  if (error.input) parts.push(`input ${error.input}`);
  return parts.length ? h("span", { class: "where" }, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p])), ": ") : null;
}

export function showProblem(box, error) {
  const problem = error && error.problem ? error.problem : { title: "Error", detail: String(error) };
  replace(box, problemView(problem));
  box.hidden = false;
}

export function formatTime(iso) {
  if (!iso) return "–";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function duration(fromIso, toIso) {
  if (!fromIso || !toIso) return "–";
  const ms = new Date(toIso) - new Date(fromIso);
  if (!Number.isFinite(ms)) return "–";
  return ms < 1000 ? `${ms} ms` : ms < 120000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 60000).toFixed(1)} min`;
}

export function formatBytes(size) {
  if (size === undefined || size === null) return "";
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KiB`;
  return `${(size / 1024 / 1024).toFixed(1)} MiB`;
}

export const TERMINAL = new Set(["succeeded", "failed", "canceled", "expired"]);

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}
