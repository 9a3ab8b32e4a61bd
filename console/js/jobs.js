// The tenant's jobs, newest first, filtered by status, a page at a time with the API's cursor.

import { api } from "./api.js";
import { formatTime, h, problemView, replace, statusBadge } from "./dom.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "canceled", "expired"];
const PAGE_SIZES = [10, 25, 50, 100];

export async function jobsView(view, { query, navigate }) {
  const status = query.get("status") || "";
  const limit = PAGE_SIZES.includes(Number(query.get("limit"))) ? Number(query.get("limit")) : 25;
  // The cursors of the pages before this one, so Previous can go back: the API's cursor only goes forward.
  const trail = (query.get("trail") || "").split(" ").filter(Boolean);
  const cursor = query.get("cursor") || "";

  const link = (params) => {
    const next = new URLSearchParams({ status, limit: String(limit), ...params });
    for (const [name, value] of [...next]) if (!value) next.delete(name);
    return `#/jobs?${next}`;
  };
  const statusSelect = h("select", { id: "status-filter" }, STATUSES.map((s) => h("option", { value: s, selected: s === status }, s || "any status")));
  const sizeSelect = h("select", { id: "page-size" }, PAGE_SIZES.map((n) => h("option", { value: n, selected: n === limit }, String(n))));
  statusSelect.addEventListener("change", () => navigate(link({ status: statusSelect.value })));
  sizeSelect.addEventListener("change", () => navigate(link({ limit: sizeSelect.value })));
  const body = h("div", { id: "jobs-table" }, h("p", { class: "note" }, "Loading…"));
  const pager = h("nav", { class: "pager", "aria-label": "Pages" });
  replace(
    view,
    h(
      "section",
      { class: "panel" },
      h("h1", {}, "Jobs"),
      h("div", { class: "filters" },
        h("label", { for: "status-filter" }, "Status"), statusSelect,
        h("label", { for: "page-size" }, "Per page"), sizeSelect),
      body,
      pager,
    ),
  );

  try {
    const { data } = await api.jobs({ status, limit, cursor });
    if (!data.items.length) {
      replace(body, h("p", { class: "note" }, cursor ? "No more jobs." : "No jobs yet. ", cursor ? null : h("a", { href: "#/run" }, "Run one.")));
    } else {
      replace(
        body,
        h(
          "table",
          { class: "jobs" },
          h("caption", { class: "sr-only" }, "Jobs, newest first"),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Job"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Created"))),
          h(
            "tbody",
            {},
            data.items.map((job) =>
              h(
                "tr",
                { "data-job-id": job.job_id },
                h("td", {}, h("a", { href: `#/jobs/${job.job_id}` }, h("code", {}, job.job_id.slice(0, 8)))),
                h("td", {}, statusBadge(job.status), job.status === "running" ? ` ${Math.round(job.progress || 0)}%` : ""),
                h("td", {}, job.template || "workflow", job.error ? h("span", { class: "error-code" }, ` ${job.error.code}`) : ""),
                h("td", {}, h("time", { datetime: job.created_at }, formatTime(job.created_at))),
              ),
            ),
          ),
        ),
      );
    }
    const page = trail.length + 1;
    replace(
      pager,
      trail.length || cursor
        ? h("a", { href: link({ cursor: (trail.at(-1) ?? "-") === "-" ? "" : trail.at(-1), trail: trail.slice(0, -1).join(" ") }), id: "page-previous", rel: "prev" }, "← Previous")
        : null,
      h("span", { id: "page-number" }, `Page ${page}`),
      data.next_cursor
        ? h("a", { href: link({ cursor: data.next_cursor, trail: [...trail, cursor || "-"].join(" ") }), id: "page-next", rel: "next" }, "Next →")
        : null,
    );
  } catch (error) {
    replace(body, h("div", { class: "problem", role: "alert" }, problemView(error.problem || { title: String(error) })));
  }
}
