// Live job events over the WebSocket API: POST /v1/ws-tokens gives {token, url}; subscribe to a job and
// receive job.snapshot (first), job.progress, job.status and, having asked, job.preview frames.
//
// Every job event has a `seq` that only grows. `cursor.seq` keeps the last one seen across reconnects: a
// new subscription asks for what came `after` it, the server replays that and ends with job.replayed.
// Live frames that overtake the replay are held until then, and anything at or below the cursor is
// dropped, so each event is handled once, in order.

import { api } from "./api.js";

export async function watchJob(jobId, { cursor, onSnapshot, onProgress, onStatus, onPreview, onClosed }) {
  const { data: ticket } = await api.wsToken();
  const socket = new WebSocket(ticket.url);
  let stopped = false;
  const resuming = cursor.seq !== null;
  let held = resuming ? [] : null;
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
    if (frame.type === "job.replayed") {
      const waiting = (held || []).sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
      held = null;
      onSnapshot(null);
      waiting.forEach(handle);
    } else if (held) held.push(frame);
    else handle(frame);
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
