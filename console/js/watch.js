// Live job events over the WebSocket API: POST /v1/ws-tokens gives {token, url}; subscribe to a job and
// receive job.snapshot (always first), job.progress and job.status frames.

import { api } from "./api.js";

export async function watchJob(jobId, { onSnapshot, onProgress, onStatus, onClosed }) {
  const { data: ticket } = await api.wsToken();
  const socket = new WebSocket(ticket.url);
  let stopped = false;
  socket.addEventListener("open", () => socket.send(JSON.stringify({ action: "subscribe", job_id: jobId })));
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.type === "job.snapshot" && frame.job && frame.job.job_id === jobId) onSnapshot(frame.job);
    else if (frame.type === "job.progress" && frame.job_id === jobId) onProgress(frame);
    else if (frame.type === "job.status" && frame.job_id === jobId) onStatus(frame);
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
