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
    const res = await fetch("/api/workspaces", { method: "POST", headers });
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

async function request(method, path, body = undefined, { auth = true, retry = true } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${await token()}`;
  const res = await fetch(path, {
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
  createModel: (spec, seed) => request("POST", "/api/models", { spec, seed }),
  replaceModel: (id, spec) => request("PUT", `/api/models/${enc(id)}`, { spec }),
  deleteModel: (id) => request("DELETE", `/api/models/${enc(id)}`),
  summary: (id) => request("GET", `/api/models/${enc(id)}/summary`),
  parameters: (id) => request("GET", `/api/models/${enc(id)}/parameters`),
  parameter: (id, name) => request("GET", `/api/models/${enc(id)}/parameters/${enc(name)}`),
  setGrad: (id, name, flag) =>
    request("PATCH", `/api/models/${enc(id)}/parameters/${enc(name)}`, { requires_grad: flag }),
  run: (id, body) => request("POST", `/api/models/${enc(id)}/run`, body),
  code: (id) => request("GET", `/api/models/${enc(id)}/code`),
  /** An effects-lab experiment: name is "pooling", "activations/softmax" … */
  effect: (name, body) => request("POST", `/api/effects/${name}`, body),
  /** Why?: route is "attribute", "gradients", "intervene" or "featvis". */
  attribution: (id, route, body) => request("POST", `/api/models/${enc(id)}/${route}`, body),
};
