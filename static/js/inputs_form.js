/**
 * The model's inputs: name, shape, dtype and, for token inputs, the vocabulary; plus the
 * class labels. Edits change the spec and trigger validation like any block edit.
 */

import { el, field, replace, uid } from "./dom.js";

function parseShape(text) {
  const parts = text.split(/[\s,×x*]+/).filter(Boolean);
  if (!parts.length || !parts.every((p) => /^\d+$/.test(p))) return null;
  return parts.map(Number);
}

export class InputsForm {
  /** ctx: {store, edited(), renamed(old, new)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
  }

  get spec() {
    return this.ctx.store.state.spec;
  }

  render() {
    const rows = Object.entries(this.spec.inputs).map(([name, inp]) => this.row(name, inp));
    const add = el("button", {
      type: "button",
      class: "btn btn-small",
      text: "+ input",
      onclick: () => this.add(),
    });
    const labels = el("input", {
      type: "text",
      class: "labels-input",
      spellcheck: "false",
      value: (this.spec.labels || []).join(", "),
      placeholder: "e.g. cat, dog (optional)",
    });
    labels.addEventListener("input", () => {
      const words = labels.value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      if (words.length) this.spec.labels = words;
      else delete this.spec.labels;
      this.ctx.edited();
    });
    replace(
      this.root,
      el("div", { class: "inputs-head" }, el("h3", { class: "sub-title", text: "Inputs" }), add),
      el("div", { class: "input-rows" }, rows),
      field("Class labels", labels, { inline: true }),
    );
  }

  row(name, inp) {
    const nameBox = el("input", {
      type: "text",
      class: "input-name",
      value: name,
      spellcheck: "false",
      "aria-label": "Input name",
    });
    nameBox.addEventListener("change", () => this.rename(name, nameBox.value.trim()));
    const shape = el("input", {
      type: "text",
      class: "input-shape",
      value: inp.shape.join(", "),
      spellcheck: "false",
      inputmode: "numeric",
    });
    const problem = el("span", { class: "arg-problem", role: "alert" });
    shape.addEventListener("input", () => {
      const dims = parseShape(shape.value);
      shape.setAttribute("aria-invalid", dims ? "false" : "true");
      problem.textContent = dims ? "" : "Use sizes like 1, 1, 32, 32.";
      if (!dims) return;
      inp.shape = dims;
      this.ctx.edited();
    });
    const dtype = el(
      "select",
      { class: "input-dtype" },
      el("option", { value: "float32", text: "float32" }),
      el("option", { value: "int64", text: "int64" }),
    );
    dtype.value = inp.dtype || "float32";
    dtype.addEventListener("change", () => {
      inp.dtype = dtype.value;
      this.ctx.edited();
    });
    dtype.setAttribute("aria-label", `dtype of ${name}`);
    shape.setAttribute("aria-label", `Shape of ${name}`);
    const parts = [
      nameBox,
      el("span", { class: "field-label", "aria-hidden": "true", text: "shape" }),
      shape,
      dtype,
    ];
    if (Object.keys(this.spec.inputs).length > 1) {
      parts.push(
        el("button", {
          type: "button",
          class: "btn btn-icon btn-small",
          "aria-label": `Remove input ${name}`,
          text: "✕",
          onclick: () => this.remove(name),
        }),
      );
    }
    const row = el("div", { class: "input-row" }, parts, problem);
    if ((inp.dtype || "float32") === "int64") row.append(this.vocab(inp));
    return row;
  }

  vocab(inp) {
    const id = uid("vocab");
    const words = inp.vocab || [];
    const area = el("textarea", {
      id,
      rows: "2",
      class: "vocab",
      spellcheck: "false",
      value: words.join(" "),
    });
    area.addEventListener("input", () => {
      const list = area.value.split(/\s+/).filter(Boolean);
      if (list.length) inp.vocab = list;
      else delete inp.vocab;
      this.ctx.edited();
    });
    return el(
      "details",
      { class: "vocab-box" },
      el("summary", {
        text: words.length
          ? `vocabulary: ${words.length} words (${words.slice(0, 6).join(" ")}${words.length > 6 ? " …" : ""})`
          : "vocabulary: none (indices only)",
      }),
      el("label", {
        for: id,
        class: "field-label",
        text: "Words, in index order, separated by spaces",
      }),
      area,
    );
  }

  add() {
    let n = 1;
    while (`x${n}` in this.spec.inputs) n += 1;
    this.spec.inputs[`x${n}`] = { shape: [1, 8] };
    this.render();
    this.ctx.edited();
  }

  remove(name) {
    delete this.spec.inputs[name];
    this.render();
    this.ctx.edited();
  }

  rename(old, name) {
    if (!name || name === old || name in this.spec.inputs) return this.render();
    const entries = Object.entries(this.spec.inputs).map(([k, v]) => [k === old ? name : k, v]);
    this.spec.inputs = Object.fromEntries(entries);
    for (const layer of this.spec.layers) {
      if (layer.inputs) layer.inputs = layer.inputs.map((i) => (i === old ? name : i));
    }
    this.ctx.renamed(old, name);
    this.render();
    this.ctx.edited();
  }
}
