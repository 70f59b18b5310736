/**
 * The REST API, as the page uses it. The workspace token lives in localStorage (never in
 * the URL); a 401 (a restarted server forgot the workspace) makes a new one once and retries.
 * Errors arrive as ApiError carrying the API's {code, message, layer, detail}.
 */

const TOKEN_KEY = "playground.token";
let tokenPromise = null;

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `The server answered ${status}.`);
    this.status = status;
    this.code = err.code || "http_error";
    this.layer = err.layer || null;
    this.detail = err.detail ?? null;
  }
}

let askCode = null;

/** Register how to ask for the class access code: (message) => Promise<string>. */
export function onAccessCode(ask) {
  askCode = ask;
}

async function newWorkspace() {
  let code = null;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const headers = code ? { "X-Access-Code": code } : {};
    const res = await reach("/api/workspaces", { method: "POST", headers });
    const body = await res.json().catch(() => null);
    if (res.ok) {
      localStorage.setItem(TOKEN_KEY, body.token);
      return body.token;
    }
    const err = new ApiError(res.status, body);
    if (res.status !== 403 || !err.code.startsWith("access_code") || !askCode) throw err;
    code = await askCode(err.message); // the class has an access code: ask for it
  }
  throw new Error("No workspace: the access code was not accepted.");
}

function token() {
  if (!tokenPromise) {
    const saved = localStorage.getItem(TOKEN_KEY);
    tokenPromise = saved ? Promise.resolve(saved) : newWorkspace();
    tokenPromise.catch(() => {
      tokenPromise = null;
    });
  }
  return tokenPromise;
}

export const UNREACHABLE = "unreachable";

/** fetch, with the browser's "Failed to fetch" said in words (an ApiError, status 0). */
async function reach(path, init) {
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, {
      error: {
        code: UNREACHABLE,
        message:
          "The server cannot be reached (it stopped, or the network is down). Nothing is lost: this page keeps your model and tries again when the server is back.",
      },
    });
  }
}

/** Is the server answering? (GET /healthz, no workspace needed.) */
export async function serverUp() {
  try {
    return (await fetch("/healthz", { cache: "no-store" })).ok;
  } catch {
    return false;
  }
}

async function request(method, path, body = undefined, { auth = true, retry = true } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${await token()}`;
  const res = await reach(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 401 && auth && retry) {
    localStorage.removeItem(TOKEN_KEY);
    tokenPromise = null;
    return request(method, path, body, { auth, retry: false });
  }
  const wait = Number(res.headers.get("Retry-After"));
  if (res.status === 429 && retry && wait > 0 && wait <= 10) {
    await new Promise((r) => setTimeout(r, wait * 1000)); // over the rate limit: wait once
    return request(method, path, body, { auth, retry: false });
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

const enc = encodeURIComponent;

export const api = {
  /** Start making the workspace now, so it is ready when the first model is built. */
  warmUp: () => token(),
  catalog: () => request("GET", "/api/catalog", undefined, { auth: false }),
  preset: (name) => request("GET", `/api/presets/${enc(name)}`, undefined, { auth: false }),
  validate: (spec) => request("POST", "/api/validate", { spec }, { auth: false }),
  listModels: () => request("GET", "/api/models"),
  getModel: (id) => request("GET", `/api/models/${enc(id)}`),
  createModel: (spec, seed) => request("POST", "/api/models", { spec, seed }),
  replaceModel: (id, spec) => request("PUT", `/api/models/${enc(id)}`, { spec }),
  deleteModel: (id) => request("DELETE", `/api/models/${enc(id)}`),
  summary: (id) => request("GET", `/api/models/${enc(id)}/summary`),
  parameters: (id, ref = null) =>
    request(
      "GET",
      `/api/models/${enc(id)}/parameters` +
        (ref ? `?training=${enc(ref.training)}&step=${enc(ref.step)}` : ""),
    ),
  parameter: (id, name) => request("GET", `/api/models/${enc(id)}/parameters/${enc(name)}`),
  setGrad: (id, name, flag) =>
    request("PATCH", `/api/models/${enc(id)}/parameters/${enc(name)}`, { requires_grad: flag }),
  run: (id, body) => request("POST", `/api/models/${enc(id)}/run`, body),
  code: (id) => request("GET", `/api/models/${enc(id)}/code`),
  /** Each experiment's choices, defaults and tutorial case (the lab's one source of them). */
  effectOptions: () => request("GET", "/api/effects", undefined, { auth: false }),
  /** An effects-lab experiment: name is "pooling", "activations/softmax" … */
  effect: (name, body) => request("POST", `/api/effects/${name}`, body),
  /** Why?: route is "attribute", "gradients", "intervene" or "featvis". */
  attribution: (id, route, body) => request("POST", `/api/models/${enc(id)}/${route}`, body),
};

/** For views with routes of their own (static/js/train): an authenticated JSON request. */
export const requestJSON = request;

/** The Authorization header, for a streamed fetch (EventSource cannot send headers). */
export async function authHeaders() {
  return { Authorization: `Bearer ${await token()}` };
}
