// The public REST API, same origin as the console: /v1/... with the key in x-api-key.
// Errors come back as RFC 9457 problem documents; ApiError carries the document as the API said it.

const KEY_STORAGE = "comfy-console.api-key";

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function problemOf(response) {
  const text = await response.text();
  try {
    const body = JSON.parse(text);
    if (body && typeof body === "object") {
      // API Gateway's own answers (a missing key, throttling) are {"message": ...}, not problem documents.
      if (!body.title && body.message) {
        return { title: body.message, status: response.status, detail: gatewayDetail(response.status, body.message) };
      }
      return body;
    }
  } catch {
    // not JSON: fall through
  }
  return { title: response.statusText || "Error", status: response.status, detail: text.slice(0, 500) || `HTTP ${response.status}` };
}

function gatewayDetail(status, message) {
  if (status === 403) return "The API key was not accepted. Sign out and sign in with a valid key.";
  if (status === 429) return "Too many requests for this key's usage plan; try again in a moment.";
  return message;
}

export async function request(method, path, { body, headers = {}, key = storedKey() } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (key) init.headers["x-api-key"] = key;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, { title: "The API could not be reached", detail: String(error.message || error) });
  }
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  if (response.status === 204) return { data: null, response };
  return { data: await response.json(), response };
}

export const api = {
  templates: () => request("GET", "/v1/templates"),
  template: (name) => request("GET", `/v1/templates/${encodeURIComponent(name)}`),
  submit: (bodyText, idempotencyKey) =>
    request("POST", "/v1/jobs", { body: bodyText, headers: { "Idempotency-Key": idempotencyKey } }),
  job: (id) => request("GET", `/v1/jobs/${encodeURIComponent(id)}`),
  jobs: ({ status, limit, cursor }) => {
    const query = new URLSearchParams();
    if (status) query.set("status", status);
    if (limit) query.set("limit", String(limit));
    if (cursor) query.set("cursor", cursor);
    return request("GET", `/v1/jobs?${query}`);
  },
  cancel: (id) => request("DELETE", `/v1/jobs/${encodeURIComponent(id)}`),
  upload: (contentType, filename) =>
    request("POST", "/v1/uploads", { body: { content_type: contentType, filename } }),
  wsToken: () => request("POST", "/v1/ws-tokens"),
};

// Sends a file where POST /v1/uploads said: a form POST with the ticket's fields and then the file (the
// storage checks type and size), or a PUT with the ticket's headers. The bucket answers in XML, not problems.
export async function sendUpload(ticket, file) {
  let init;
  if (ticket.fields) {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
    form.append("file", file);
    init = { method: "POST", body: form };
  } else {
    init = { method: ticket.method || "PUT", headers: ticket.headers || {}, body: file };
  }
  let response;
  try {
    response = await fetch(ticket.url, init);
  } catch (error) {
    throw new ApiError(0, { title: "The upload did not reach storage", detail: String(error.message || error) });
  }
  if (!response.ok) {
    const text = await response.text();
    const code = /<Code>([^<]+)<\/Code>/.exec(text);
    const detail = code && code[1] === "EntityTooLarge"
      ? `the file is larger than the ${Math.round(ticket.max_bytes / 1048576)} MiB allowed`
      : `storage answered HTTP ${response.status}${code ? ` (${code[1]})` : ""}`;
    throw new ApiError(response.status, { title: "Upload refused", detail });
  }
}
