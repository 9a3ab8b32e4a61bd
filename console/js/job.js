// One job: status, a live progress bar from the WebSocket, timings, attempts, error, outputs; cancel.

import { api } from "./api.js";
import { TERMINAL, duration, formatBytes, formatTime, h, problemView, replace, statusBadge } from "./dom.js";
import { watchJob } from "./watch.js";

function outputView(output) {
  const type = output.content_type || "";
  const label = `${output.filename} (${[type, formatBytes(output.size)].filter(Boolean).join(", ")})`;
  let media = null;
  if (type.startsWith("image/")) media = h("img", { src: output.url, alt: `output ${output.filename} of node ${output.node_id}`, loading: "lazy" });
  else if (type.startsWith("video/")) media = h("video", { src: output.url, controls: true, preload: "metadata" });
  else if (type.startsWith("audio/")) media = h("audio", { src: output.url, controls: true, preload: "metadata" });
  return h(
    "figure",
    { class: "output" },
    media,
    h("figcaption", {}, h("a", { href: output.url, download: output.filename, rel: "noopener" }, "Download ", label), h("span", { class: "node" }, ` node ${output.node_id}`)),
  );
}

function errorView(error) {
  const rows = [
    ["code", error.code],
    ["node id", error.node_id],
    ["node type", error.node_type],
  ].filter(([, value]) => value !== null && value !== undefined && value !== "");
  return h(
    "section",
    { class: "job-error", "aria-labelledby": "job-error-title" },
    h("h2", { id: "job-error-title" }, "Error"),
    h("p", { class: "problem-detail" }, error.message || "failed"),
    h("dl", { class: "facts" }, rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, h("code", {}, String(value)))])),
  );
}

function facts(job) {
  const rows = [
    ["created", formatTime(job.created_at)],
    ["started", formatTime(job.started_at)],
    ["finished", formatTime(job.finished_at)],
    ["waited in queue", duration(job.created_at, job.started_at)],
    ["ran for", duration(job.started_at, job.finished_at)],
    ["attempts", String(job.attempts ?? 0)],
    ["template", job.template || "– (a workflow)"],
  ];
  return h("dl", { class: "facts" }, rows.flatMap(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]));
}

export async function jobView(view, { jobId, notice }) {
  const badge = h("span", { id: "job-status" });
  const bar = h("progress", { id: "job-progress", max: 100, value: 0, "aria-label": "progress" });
  const percent = h("span", { id: "job-percent" }, "0%");
  const live = h("span", { id: "job-live", class: "live", hidden: true, title: "receiving live updates" }, "live");
  const step = h("p", { id: "job-step", class: "note", "aria-live": "polite" });
  const preview = h("img", { id: "job-preview", class: "preview", alt: "live preview of the image being made", hidden: true });
  const cancel = h("button", { type: "button", id: "job-cancel", class: "danger", hidden: true }, "Cancel job");
  const problem = h("div", { class: "problem", role: "alert", hidden: true });
  const details = h("div", { id: "job-details" });
  const outputs = h("div", { id: "job-outputs", class: "outputs" });
  const errorSlot = h("div", { id: "job-error" });
  replace(
    view,
    h(
      "section",
      { class: "panel" },
      h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / ", h("code", {}, jobId)),
      h("h1", {}, "Job ", badge),
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      h("div", { class: "progress-row" }, bar, percent, live),
      step,
      preview,
      h("div", { class: "actions" }, cancel),
      problem,
      errorSlot,
      outputs,
      details,
    ),
  );

  let job = null;
  let best = 0;
  let previewUrl = null;
  // A JPEG sent inline (base64) is shown from a blob: URL; the one before it is let go.
  const showPreview = (frame) => {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.hidden = !frame;
    if (!frame) return;
    const bytes = Uint8Array.from(atob(frame.data), (c) => c.charCodeAt(0));
    previewUrl = URL.createObjectURL(new Blob([bytes], { type: frame.content_type || "image/jpeg" }));
    preview.src = previewUrl;
    preview.width = frame.width;
    preview.height = frame.height;
  };
  const setPercent = (value) => {
    // Never backwards, as the API promises: a late snapshot must not undo a progress frame.
    best = Math.max(best, Math.min(100, Number(value) || 0));
    bar.value = best;
    percent.textContent = `${Math.round(best)}%`;
  };
  const render = (next) => {
    job = next;
    replace(badge, statusBadge(job.status));
    if (job.status === "succeeded") setPercent(100);
    else setPercent(job.progress);
    cancel.hidden = TERMINAL.has(job.status);
    cancel.disabled = Boolean(job.cancel_requested);
    if (job.cancel_requested && !TERMINAL.has(job.status)) step.textContent = "cancel requested…";
    if (TERMINAL.has(job.status)) {
      step.textContent = "";
      showPreview(null);
    }
    replace(errorSlot, job.error ? errorView(job.error) : null);
    replace(outputs, (job.outputs || []).length ? [h("h2", {}, "Outputs"), h("div", { class: "gallery" }, job.outputs.map(outputView))] : null);
    replace(
      details,
      h("h2", {}, "Details"),
      facts(job),
      job.params ? [h("h3", {}, "Parameters"), h("pre", {}, JSON.stringify(job.params, null, 2))] : null,
      job.metadata ? [h("h3", {}, "Metadata"), h("pre", {}, JSON.stringify(job.metadata, null, 2))] : null,
    );
  };
  const refresh = async () => {
    try {
      const { data } = await api.job(jobId);
      if (view.isConnected) render(data);
    } catch (error) {
      replace(problem, problemView(error.problem || { title: String(error) }));
      problem.hidden = false;
    }
  };

  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    problem.hidden = true;
    try {
      const { data } = await api.cancel(jobId);
      render(data);
    } catch (error) {
      replace(problem, problemView(error.problem || { title: String(error) }));
      problem.hidden = false;
      await refresh();
    }
  });

  await refresh();
  if (!job || TERMINAL.has(job.status)) return null;

  // Reconnects when the socket drops (API Gateway closes idle ones): the first subscription opens with a
  // snapshot (it also says the page is live from that moment), and a reconnection resumes after the last
  // event seen, so nothing is missed in between.
  const cursor = { seq: null };
  let stopped = false;
  let socket = null;
  let retries = 0;
  const connect = async () => {
    if (stopped || !view.isConnected || TERMINAL.has(job.status)) return;
    try {
      socket = await watchJob(jobId, {
        cursor,
        // null: a resumed subscription got its first frame (the replay's, or a live one).
        onSnapshot: (snapshot) => {
          retries = 0;
          if (!snapshot) {
            live.hidden = false;
            return null;
          }
          live.hidden = TERMINAL.has(snapshot.status);
          return TERMINAL.has(snapshot.status) ? refresh() : render({ ...job, ...snapshot });
        },
        onPreview: (frame) => {
          if (frame.data && !TERMINAL.has(job.status)) showPreview(frame);
        },
        onProgress: (frame) => {
          setPercent(frame.percent);
          step.textContent = `${frame.node_type || "node"} ${frame.node_id}: step ${frame.value} of ${frame.max}`;
          if (job.status === "queued") replace(badge, statusBadge("running"));
        },
        // Terminal frames carry outputs without fresh links; the job read gives presigned URLs.
        onStatus: (frame) => {
          if (TERMINAL.has(frame.status)) live.hidden = true;
          return TERMINAL.has(frame.status) ? refresh() : render({ ...job, status: frame.status });
        },
        onClosed: () => {
          live.hidden = true;
          if (stopped || !view.isConnected || TERMINAL.has(job.status)) return;
          retries += 1;
          if (retries <= 5) setTimeout(connect, 1000 * retries);
          else step.textContent = "live updates stopped; reload the page to resume";
        },
      });
      if (stopped) socket.stop();
    } catch (error) {
      replace(problem, problemView(error.problem || { title: String(error) }));
      problem.hidden = false;
    }
  };
  connect();
  return {
    stop() {
      stopped = true;
      if (socket) socket.stop();
    },
  };
}
