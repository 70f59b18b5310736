/**
 * The page's one state object and its URL-hash form (like TF Playground's state.ts).
 *
 * The state holds everything a share link must restore: the spec being edited, the
 * weights seed, each input's maker, the mode and run seed, the open tab and palette, the
 * selected parameter and layer, and whether to run on open. It is written to the hash as
 * `#z=<base64url(deflate(JSON))>`; `hide=palette,code` flags ride beside it untouched.
 * The workspace token is never part of it.
 */

export const PANELS = ["palette", "builder", "run", "inspect", "code", "share", "train"];
export const TABS = ["run", "inspect", "code", "share", "train", "why"];

export function emptySpec() {
  return { name: "MyModel", inputs: { x: { shape: [1, 8] } }, layers: [] };
}

export function defaultState() {
  return {
    v: 1,
    spec: emptySpec(),
    seed: 0, // weights seed: the model is build(spec, seed)
    inputs: {}, // input name -> maker ({kind: "random", …})
    mode: "eval",
    runSeed: 0, // seeds dropout in train mode
    gradients: false, // the Run tab draws each layer's gradient beside its activation
    tab: "run",
    palette: true,
    param: null, // the parameter shown in Inspect
    focus: null, // the selected layer: a lesson link scrolls to its activation after a run
    autorun: false, // run as soon as the link opens
    train: null, // the Train tab: {config (a TrainConfig), at (the slider's step), sample}
  };
}

/** A tiny observable store around the one state object; `save` writes the hash, debounced. */
export class Store extends EventTarget {
  constructor(state, hide) {
    super();
    this.state = state;
    this.hide = hide; // Set of hidden panels, from the URL only
    this.timer = null;
    this.written = location.hash;
  }

  /** Merge a patch into the state, tell listeners which keys changed, and save. */
  update(patch) {
    Object.assign(this.state, patch);
    this.dispatchEvent(new CustomEvent("change", { detail: Object.keys(patch) }));
    this.save();
  }

  save() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.writeHash(), 200);
  }

  async writeHash() {
    const hash = await this.link();
    // Another link pasted into this tab since the last write: it wins (the page reloads
    // on its hashchange); writing over it would throw it away.
    if (location.hash !== this.written) return;
    this.written = hash;
    if (location.hash !== hash) history.replaceState(null, "", hash);
  }

  /**
   * The hash that restores this page (with the URL's hide flags unless others are given);
   * `patch` overrides parts of the state in the link only (a share link's tab).
   */
  async link(hide = this.hide, patch = {}) {
    const parts = [`z=${await pack({ ...this.state, ...patch })}`];
    if (hide.size) parts.push(`hide=${[...hide].join(",")}`);
    return `#${parts.join("&")}`;
  }
}

function toBase64Url(bytes) {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** state -> base64url of raw-deflated JSON (about a third of plain base64 for LeNet). */
export async function pack(state) {
  const json = new TextEncoder().encode(JSON.stringify(state));
  return toBase64Url(await pipe(json, new CompressionStream("deflate-raw")));
}

export async function unpack(text) {
  const bytes = await pipe(fromBase64Url(text), new DecompressionStream("deflate-raw"));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/**
 * Read the hash: `z=` (a saved state), `preset=` (open a preset), `new` (empty model),
 * plus `tab=`, `focus=` (a layer to select), `run` (run on open) and `hide=` (panels to hide).
 */
export async function readHash(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const hide = new Set(
    (params.get("hide") || "")
      .split(",")
      .map((s) => s.trim())
      .filter((s) => PANELS.includes(s)),
  );
  const out = { hide, preset: params.get("preset"), focus: params.get("focus"), state: null };
  out.tab = TABS.includes(params.get("tab")) ? params.get("tab") : null;
  out.isNew = params.has("new");
  out.autorun = params.has("run"); // a lesson card: run as soon as the model is built
  out.lesson = params.get("lesson"); // a training lesson (static/js/train/lessons.js)
  if (params.get("z")) {
    try {
      out.state = { ...defaultState(), ...(await unpack(params.get("z"))) };
      // the Share tab is where a link is made, never where it should open
      if (!TABS.includes(out.state.tab) || out.state.tab === "share") out.state.tab = "run";
    } catch {
      out.error = "This link's state could not be read (it may be cut short); starting empty.";
    }
  }
  return out;
}
