/**
 * Which input the "Why?" view explains: the Run tab's input, or a test sample of the dataset
 * the model is trained on (the Train tab's configuration: dataset, its parameters and
 * transforms), made by the server as a "dataset" input maker, so the explanation is about a
 * real image the model has learned to read. The choice is kept in the page state
 * (`whyInput: {sample: index}`, null for the Run tab's input), so a share link has it.
 */

import { el, field } from "../dom.js";

export class InputSource {
  /** ctx: {store, makers() -> the Run tab's input makers, changed()} */
  constructor(ctx) {
    this.ctx = ctx;
    this.kind = el("select", { id: "why-input" });
    this.index = el("input", {
      type: "number",
      id: "why-sample",
      min: "0",
      step: "1",
      class: "num-short",
      value: "0",
    });
    this.kind.addEventListener("change", () => this.save());
    this.index.addEventListener("change", () => this.save());
    this.indexField = field("Sample", this.index, { inline: true });
    this.box = el("span", { class: "why-source" });
  }

  /** The training configuration whose dataset gives samples (null: none, or token inputs). */
  config() {
    const { spec, train } = this.ctx.store.state;
    const first = Object.values(spec.inputs)[0] || {};
    if (!train?.config?.dataset || /int|long/.test(first.dtype || "")) return null;
    return train.config;
  }

  /** The controls, refilled for the current model and state. */
  render() {
    const cfg = this.config();
    const saved = this.ctx.store.state.whyInput;
    const options = [el("option", { value: "run", text: "the Run tab's input" })];
    if (cfg) options.push(el("option", { value: "sample", text: `a ${cfg.dataset} test sample` }));
    this.kind.replaceChildren(...options);
    this.kind.value = cfg && saved && Number.isInteger(saved.sample) ? "sample" : "run";
    if (cfg && saved) this.index.value = String(saved.sample);
    this.indexField.hidden = this.kind.value !== "sample";
    this.box.replaceChildren(field("Input", this.kind, { inline: true }), this.indexField);
    return this.box;
  }

  save() {
    const n = Number(this.index.value);
    const sample = this.kind.value === "sample" && Number.isInteger(n) && n >= 0 ? n : null;
    this.indexField.hidden = this.kind.value !== "sample";
    this.ctx.store.update({ whyInput: sample === null ? null : { sample } });
    this.ctx.changed();
  }

  /** {input name: maker} for the API: the dataset sample, or the Run tab's makers. */
  makers() {
    const cfg = this.config();
    const sample = this.ctx.store.state.whyInput?.sample;
    if (!cfg || !Number.isInteger(sample)) return this.ctx.makers();
    const name = Object.keys(this.ctx.store.state.spec.inputs)[0];
    const maker = {
      kind: "dataset",
      dataset: cfg.dataset,
      split: "test",
      index: sample,
      params: cfg.dataset_params || {},
      transforms: cfg.transforms || [],
    };
    return { ...this.ctx.makers(), [name]: maker };
  }
}
