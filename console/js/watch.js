// Live job events over the WebSocket API: POST /v1/ws-tokens gives {token, url}; subscribe to a job and
// receive job.progress, job.status and, having asked, job.preview frames (and job.snapshot first when the
// subscription does not say where the job was).
//
// Every job event has a `seq` that only grows. `cursor.seq` keeps the last one known (the job's `seq` as
// read, then each frame's) across reconnects: a subscription asks for what came `after` it, and the
// server sends only what was missed, before any live frame, ending it with job.replayed; nothing at all
// when nothing was missed. Anything at or below the cursor is dropped (a frame may come both ways), so
// each event is handled once, in order.

import { api } from "./api.js";

export async function watchJob(jobId, { cursor, onSnapshot, onProgress, onStatus, onPreview, onClosed }) {
  const { data: ticket } = await api.wsToken();
  const socket = new WebSocket(ticket.url);
  let stopped = false;
  const resuming = cursor.seq !== null;
  // Resuming there is no snapshot: the first frame says the subscription is live.
  let waiting = resuming;
  socket.addEventListener("open", () => {
    const message = { action: "subscribe", job_id: jobId, previews: true };
    if (resuming) message.after = cursor.seq;
    socket.send(JSON.stringify(message));
  });
  const handle = (frame) => {
    if (typeof frame.seq === "number") {
      if (cursor.seq !== null && frame.seq <= cursor.seq) return;
      cursor.seq = frame.seq;
    }
    if (frame.type === "job.snapshot") onSnapshot(frame.job);
    else if (frame.type === "job.progress") onProgress(frame);
    else if (frame.type === "job.status") onStatus(frame);
    else if (frame.type === "job.preview") onPreview(frame);
  };
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    const ours = frame.job_id === jobId || (frame.job && frame.job.job_id === jobId);
    if (!ours) return;
    if (waiting) {
      waiting = false;
      onSnapshot(null);
    }
    if (frame.type !== "job.replayed") handle(frame);
  });
  socket.addEventListener("close", () => {
    if (!stopped && onClosed) onClosed();
  });
  return {
    stop() {
      stopped = true;
      if (socket.readyState <= WebSocket.OPEN) socket.close();
    },
  };
}
