/**
 * The run controls: one input maker per model input (random with a seed, constant, a digit
 * drawn on a canvas, a PNG upload, a sentence for token inputs, a tensor typed as JSON),
 * the train/eval mode and the run seed. Makers live in the page state, so a link keeps them.
 */

import { DrawPad, fileToPNG, previewCanvas, showPNG } from "./draw.js";
import { el, field, replace, uid } from "./dom.js";

const KIND_LABELS = {
  random: "Random",
  constant: "Constant",
  draw: "Draw a digit",
  upload: "Upload an image",
  tokens: "Sentence",
  tensor: "Tensor (JSON)",
};

// the server's default (models.inputs.DEFAULT_MAKER): a run that leaves an input out gets it
const DEFAULT_MAKER = { kind: "random", distribution: "normal", seed: 0 };

/** The maker kinds that fit an input declared as `inp`. */
export function kindsFor(inp) {
  const int = inp.dtype === "int64";
  const kinds = [];
  if (int && inp.vocab) kinds.push("tokens");
  kinds.push("random", "constant");
  const s = inp.shape;
  if (!int && (s.length === 3 || s.length === 4) && [1, 3].includes(s[s.length - 3]))
    kinds.push("draw", "upload");
  kinds.push("tensor");
  return kinds;
}

/** The layers a train-mode run changes (BatchNorm's running statistics). */
export function runningStatLayers(spec) {
  return spec.layers.filter((l) => /BatchNorm/.test(l.type)).map((l) => l.name);
}

/** The maker used when the state has none: a sentence for token inputs, else random. */
export function defaultMaker(inp) {
  if (inp.dtype === "int64" && inp.vocab)
    return { kind: "tokens", text: inp.vocab.slice(0, 5).join(" ") };
  return { ...DEFAULT_MAKER };
}

/** Nested lists of zeros of `shape`: the tensor template has the input's declared shape. */
function zeros(shape) {
  if (!shape.length) return 0;
  const [n, ...rest] = shape;
  return Array.from({ length: n }, () => zeros(rest));
}

function uiKind(maker) {
  if (maker.kind === "image") return maker._via === "draw" ? "draw" : "upload";
  return maker.kind;
}

/** The state's maker as the API takes it (UI-only keys start with "_"). */
export function apiMaker(maker) {
  return Object.fromEntries(Object.entries(maker).filter(([k]) => !k.startsWith("_")));
}

export class RunPanel {
  /** ctx: {store, changed()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
  }

  get state() {
    return this.ctx.store.state;
  }

  makerFor(name) {
    const inp = this.state.spec.inputs[name];
    const m = this.state.inputs[name];
    return m && kindsFor(inp).includes(uiKind(m)) ? m : defaultMaker(inp);
  }

  /** {name: maker} for POST /run. */
  makers() {
    const out = {};
    for (const name of Object.keys(this.state.spec.inputs)) {
      const maker = this.makerFor(name);
      if (maker.kind === "image" && !maker.png_base64) {
        throw new Error(`Choose an image file for input ${name} first.`);
      }
      out[name] = apiMaker(maker);
    }
    return out;
  }

  /** POST /run's body as this panel sets it: inputs, mode, seed, every layer captured. */
  request() {
    const { state } = this;
    return {
      inputs: this.makers(),
      mode: state.mode,
      seed: state.runSeed,
      capture: "all",
      // maps in one byte per value; what shows a number asks for exact f32 (exact.js). A
      // train-mode run moves BatchNorm statistics, so it is not asked twice: f32 at once;
      // nor is a run with gradients (their maps show values, often below f16's range).
      encoding: state.mode === "train" || state.gradients ? "f32" : "u8",
    };
  }

  setMaker(name, maker, { rerender = false, rerun = true } = {}) {
    this.ctx.store.update({ inputs: { ...this.state.inputs, [name]: maker } });
    if (rerender) this.render();
    if (rerun) this.ctx.changed();
  }

  render() {
    const inputs = Object.entries(this.state.spec.inputs).map(([name, inp]) =>
      this.inputBox(name, inp),
    );
    const mode = el("fieldset", { class: "mode" }, el("legend", { text: "Mode" }));
    for (const m of ["eval", "train"]) {
      const radio = el("input", {
        type: "radio",
        name: "run-mode",
        value: m,
        checked: this.state.mode === m,
      });
      radio.addEventListener("change", () => {
        this.ctx.store.update({ mode: m });
        this.ctx.changed();
      });
      mode.append(
        el(
          "label",
          { class: "radio" },
          radio,
          m === "eval" ? "eval (dropout off)" : "train (dropout on)",
        ),
      );
    }
    const norms = runningStatLayers(this.state.spec);
    if (norms.length)
      mode.append(
        el("p", {
          class: "field-hint mode-note",
          id: "train-note",
          text: `A train-mode run updates the running statistics of ${norms.join(", ")} (kept with the model, as in PyTorch); eval mode uses them.`,
        }),
      );
    const seed = el("input", {
      type: "number",
      min: "0",
      step: "1",
      class: "num-short",
      value: String(this.state.runSeed),
    });
    seed.addEventListener("input", () => {
      if (!/^\d+$/.test(seed.value)) return;
      this.ctx.store.update({ runSeed: Number(seed.value) });
      this.ctx.changed();
    });
    replace(
      this.root,
      el("div", { class: "makers" }, inputs),
      el(
        "div",
        { class: "run-options" },
        mode,
        field("Run seed (dropout)", seed, { inline: true }),
      ),
    );
  }

  inputBox(name, inp) {
    const maker = this.makerFor(name);
    const kind = uiKind(maker);
    const id = uid("kind");
    const select = el("select", { id, class: "kind-select" });
    for (const k of kindsFor(inp)) select.append(el("option", { value: k, text: KIND_LABELS[k] }));
    select.value = kind;
    // a new kind of input starts from a template: it waits for an edit or Run, not runs
    select.addEventListener("change", () =>
      this.setMaker(name, this.blank(select.value, inp), { rerender: true, rerun: false }),
    );
    const head = el(
      "div",
      { class: "maker-head" },
      el("label", {
        for: id,
        class: "maker-name",
        text: `Input ${name} (${inp.shape.join("×")}${inp.dtype === "int64" ? ", int64" : ""})`,
      }),
      select,
    );
    return el(
      "div",
      { class: "maker", dataset: { input: name } },
      head,
      this.body(name, inp, maker, kind),
    );
  }

  blank(kind, inp) {
    if (kind === "random") return { ...DEFAULT_MAKER };
    if (kind === "constant") return { kind, value: inp.dtype === "int64" ? 0 : 1 };
    if (kind === "tokens") return defaultMaker(inp);
    if (kind === "tensor") return { kind, data: zeros(inp.shape) };
    return { kind: "image", png_base64: "", _via: kind };
  }

  body(name, inp, maker, kind) {
    // merge with the maker as it is now (fields edited since this body was drawn included)
    const set = (patch) => this.setMaker(name, { ...this.makerFor(name), ...patch });
    if (kind === "random") {
      const dist = el(
        "select",
        {},
        el("option", { value: "normal", text: "normal (mean 0, std 1)" }),
        el("option", { value: "uniform", text: "uniform [0, 1)" }),
      );
      dist.value = maker.distribution || "normal";
      dist.addEventListener("change", () => set({ distribution: dist.value }));
      const seed = el("input", {
        type: "number",
        min: "0",
        step: "1",
        class: "num-short",
        value: String(maker.seed ?? 0),
        dataset: { role: "input-seed" },
      });
      seed.addEventListener(
        "input",
        () => /^\d+$/.test(seed.value) && set({ seed: Number(seed.value) }),
      );
      return el(
        "div",
        { class: "maker-body" },
        field("Distribution", dist, { inline: true }),
        field("Seed", seed, { inline: true }),
      );
    }
    if (kind === "constant") {
      const value = el("input", {
        type: "number",
        step: "any",
        class: "num-short",
        value: String(maker.value ?? 0),
      });
      value.addEventListener(
        "input",
        () => value.value !== "" && set({ value: Number(value.value) }),
      );
      return el("div", { class: "maker-body" }, field("Every element =", value, { inline: true }));
    }
    if (kind === "tokens") {
      const text = el("input", {
        type: "text",
        class: "sentence",
        value: maker.text || "",
        spellcheck: "false",
      });
      text.addEventListener("input", () => set({ text: text.value }));
      const vocab = (inp.vocab || []).join(" ");
      return el(
        "div",
        { class: "maker-body" },
        field("Sentence", text, {
          hint: `Words it knows: ${vocab.length > 300 ? `${vocab.slice(0, 300)} …` : vocab}`,
        }),
      );
    }
    if (kind === "tensor") {
      const area = el("textarea", {
        rows: "3",
        class: "tensor-json",
        spellcheck: "false",
        value: JSON.stringify(maker.data),
      });
      const problem = el("span", { class: "arg-problem", role: "alert" });
      area.addEventListener("input", () => {
        try {
          const data = JSON.parse(area.value);
          problem.textContent = "";
          area.setAttribute("aria-invalid", "false");
          set({ data });
        } catch {
          area.setAttribute("aria-invalid", "true");
          problem.textContent = "Not JSON yet: nested lists of numbers, like [[1, 2, 3]].";
        }
      });
      return el(
        "div",
        { class: "maker-body" },
        field(`Values (nested lists, rank ${inp.shape.length})`, area),
        problem,
      );
    }
    return this.imageBody(name, inp, maker, kind, set);
  }

  imageBody(name, inp, maker, kind, set) {
    const [h, w] = inp.shape.slice(-2);
    if (kind === "draw") {
      const pad = new DrawPad(
        () => set({ png_base64: pad.toPNG(w, h), _via: "draw" }),
        `Input ${name}`,
      );
      if (maker.png_base64) pad.load(maker.png_base64);
      else {
        const inputs = { ...this.state.inputs, [name]: { ...maker, png_base64: pad.toPNG(w, h) } };
        this.ctx.store.update({ inputs }); // a blank (black) pad is a valid input too
      }
      const clear = el("button", {
        type: "button",
        class: "btn btn-small",
        text: "Clear",
        onclick: () => pad.clear(),
      });
      return el(
        "div",
        { class: "maker-body draw-body" },
        pad.canvas,
        el(
          "div",
          { class: "draw-side" },
          el("p", { class: "muted", text: `Drawn white on black and sent as a ${w}×${h} PNG.` }),
          clear,
        ),
      );
    }
    const file = el("input", { type: "file", accept: "image/png,image/jpeg" });
    const problem = el("span", { class: "arg-problem", role: "alert" });
    const preview = previewCanvas(`The image sent as input ${name}`);
    const hint = (loaded) =>
      loaded ? `An image is loaded (scaled to ${w}×${h}).` : `PNG or JPEG; scaled to ${w}×${h}.`;
    const box = field("Image file", file, { hint: hint(Boolean(maker.png_base64)) });
    if (maker.png_base64) showPNG(preview, maker.png_base64);
    file.addEventListener("change", async () => {
      if (!file.files[0]) return;
      try {
        const png = await fileToPNG(file.files[0], w, h);
        set({ png_base64: png, _via: "upload" });
        showPNG(preview, png);
        box.querySelector(".field-hint").textContent = hint(true);
        problem.textContent = "";
      } catch (err) {
        problem.textContent = err.message;
      }
    });
    return el("div", { class: "maker-body draw-body" }, preview, el("div", {}, box, problem));
  }
}
