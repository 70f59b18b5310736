/**
 * The training configuration form: dataset (with its classes and size), transforms, optimizer
 * and a log-scale learning rate, loss, batch size, length (steps or epochs), test interval,
 * shuffle and seed. The form edits `state.train.config` (a models.training.TrainConfig), which
 * rides in the URL, so a share link carries it.
 */

import { el, field, replace } from "../dom.js";

const TRANSFORMS = [
  ["scale", "scale to [0, 1]", { kind: "scale" }],
  ["pad", "pad to 32×32", { kind: "pad", size: 32 }],
  ["flatten", "flatten", { kind: "flatten" }],
];

/** The transforms a model's input seems to need for a dataset (the API has the last word). */
export function suggestTransforms(dataset, inputShape) {
  const sample = dataset.sample_shape;
  const want = inputShape.slice(1); // the model's input without its batch dimension
  const out = [];
  if (dataset.value_range) out.push({ kind: "scale" });
  if (sample.length === 3 && want.length === 3 && want[1] > sample[1])
    out.push({ kind: "pad", size: want[1] });
  if (sample.length > 1 && want.length === 1) out.push({ kind: "flatten" });
  return out;
}

export class TrainForm {
  /** ctx: {store, datasets, options, changed()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
  }

  get config() {
    return this.ctx.store.state.train.config;
  }

  set(patch) {
    const train = this.ctx.store.state.train;
    Object.assign(train.config, patch);
    this.ctx.store.update({ train });
    this.ctx.changed?.();
  }

  render() {
    const c = this.config;
    const { datasets, options } = this.ctx;
    const ds = el(
      "select",
      { id: "train-dataset", onchange: (e) => this.pickDataset(e.target.value) },
      datasets.map((d) =>
        el("option", {
          value: d.name,
          text: d.available ? d.name : `${d.name} (not installed)`,
          disabled: !d.available,
        }),
      ),
    );
    ds.value = c.dataset;
    const info = datasets.find((d) => d.name === c.dataset);
    const about = el("p", {
      class: "muted train-about",
      text: info
        ? `${info.description} ${info.train_size} training and ${info.test_size} test samples${info.classes.length ? `; classes: ${info.classes.join(", ")}` : ""}.`
        : "",
    });
    const kinds = new Set((c.transforms || []).map((t) => t.kind));
    const transforms = TRANSFORMS.map(([kind, label, value]) => {
      const box = el("input", { type: "checkbox", checked: kinds.has(kind), dataset: { t: kind } });
      box.addEventListener("change", () => {
        const keep = (this.config.transforms || []).filter((t) => t.kind !== kind);
        if (box.checked) keep.push(value);
        const order = TRANSFORMS.map(([k]) => k);
        keep.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
        this.set({ transforms: keep });
      });
      return el("label", { class: "check" }, box, label);
    });
    const opt = el(
      "select",
      { id: "train-optimizer", onchange: (e) => this.set({ optimizer: { name: e.target.value, args: { lr: this.lr() } } }) },
      options.optimizers.map((o) => el("option", { value: o.name, text: o.name, title: o.doc })),
    );
    opt.value = c.optimizer.name;
    const lrShown = el("output", { class: "mono", id: "train-lr-value", text: String(this.lr()) });
    const lr = el("input", {
      type: "range",
      id: "train-lr",
      min: -5,
      max: 0,
      step: 0.05,
      value: Math.log10(this.lr()),
      "aria-label": "learning rate (log scale)",
    });
    lr.addEventListener("input", () => {
      const v = Number((10 ** Number(lr.value)).toPrecision(2));
      lrShown.textContent = String(v);
      this.set({ optimizer: { ...this.config.optimizer, args: { ...this.config.optimizer.args, lr: v } } });
    });
    const loss = el(
      "select",
      { id: "train-loss", onchange: (e) => this.set({ loss: { name: e.target.value, args: {} } }) },
      options.losses.map((o) => el("option", { value: o.name, text: o.name })),
    );
    loss.value = c.loss?.name || "CrossEntropyLoss";
    const num = (id, key, min, max) =>
      el("input", {
        type: "number",
        id,
        min,
        max,
        step: 1,
        class: "num-short",
        value: c[key] ?? "",
        onchange: (e) => {
          const v = e.target.value === "" ? null : Number(e.target.value);
          this.set({ [key]: v });
        },
      });
    const unit = el(
      "select",
      { id: "train-unit", onchange: (e) => this.setLength(e.target.value, this.length()) },
      el("option", { value: "steps", text: "steps" }),
      el("option", { value: "epochs", text: "epochs" }),
    );
    unit.value = c.epochs ? "epochs" : "steps";
    const length = el("input", {
      type: "number",
      id: "train-length",
      min: 1,
      class: "num-short",
      value: this.length(),
      onchange: (e) => this.setLength(unit.value, Number(e.target.value)),
    });
    const shuffle = el("input", {
      type: "checkbox",
      id: "train-shuffle",
      checked: c.shuffle !== false,
      onchange: (e) => this.set({ shuffle: e.target.checked }),
    });
    replace(
      this.root,
      el("div", { class: "train-row" }, field("Dataset", ds, { inline: true }), el("span", { class: "train-transforms" }, transforms)),
      about,
      el(
        "div",
        { class: "train-row" },
        field("Optimizer", opt, { inline: true }),
        field("Learning rate", el("span", { class: "lr-pair" }, lr, lrShown), { inline: true }),
        field("Loss", loss, { inline: true }),
      ),
      el(
        "div",
        { class: "train-row" },
        field("Batch", num("train-batch", "batch_size", 1, 4096), { inline: true }),
        field("Length", el("span", {}, length, unit), { inline: true }),
        field("Test every", num("train-eval", "eval_every", 1, 10 ** 7), { inline: true }),
        field("Seed", num("train-seed", "seed", 0, 2 ** 31), { inline: true }),
        el("label", { class: "check" }, shuffle, "shuffle"),
      ),
    );
  }

  /** A new dataset: the transforms the model's input seems to need come with it. */
  pickDataset(name) {
    const d = this.ctx.datasets.find((x) => x.name === name);
    const shape = Object.values(this.ctx.store.state.spec.inputs)[0]?.shape || [];
    this.set({ dataset: name, dataset_params: {}, transforms: suggestTransforms(d, shape) });
    this.render();
    this.ctx.datasetChanged?.();
  }

  lr() {
    return this.config.optimizer?.args?.lr ?? 0.001;
  }

  length() {
    return this.config.epochs ?? this.config.steps ?? 100;
  }

  setLength(unit, n) {
    if (unit === "epochs") this.set({ epochs: n, steps: null });
    else this.set({ steps: n, epochs: null });
  }
}
