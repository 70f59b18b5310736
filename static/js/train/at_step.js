/**
 * The model as it was at one step: a time slider over the training's checkpoints (with play),
 * a test sample with its true label next to the model's prediction and class probabilities,
 * conv1's kernels as small images and the first conv layer's maps for that sample. Clicking
 * a map cell shows the convolution by hand (conv_hand.js). A badge says when the model is
 * at its initialization.
 */

import { authHeaders } from "../api.js";
import { bars, heatmap, heatmapGrid, plotlyReady } from "../charts.js";
import { el, replace } from "../dom.js";
import { decodePayload, matrix } from "../f16.js";
import { trainApi } from "./api.js";
import { ConvByHand } from "./conv_hand.js";
import { Gallery } from "./gallery.js";
import { sampleInput } from "./sample.js";
import { readSafetensors } from "./weights.js";

const softmax = (v) => {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
};

export class AtStep {
  /** ctx: {store, session, dataset(), inputShape(), training(), report(err), moved(step)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.steps = [];
    this.seq = 0;
    this.slider = el("input", { type: "range", id: "time-slider", min: 0, max: 0, step: 1, value: 0, "aria-label": "training step (checkpoints)" });
    this.slider.addEventListener("input", () => this.moveTo(this.steps[Number(this.slider.value)]));
    this.stepLabel = el("output", { id: "time-step", class: "mono", text: "step 0" });
    this.play = el("button", { type: "button", class: "btn btn-small", id: "time-play", text: "▶ Play", onclick: () => this.togglePlay() });
    this.index = el("input", { type: "number", id: "sample-index", min: 0, value: ctx.store.state.train.sample ?? 0, class: "num-short", "aria-label": "test sample index" });
    this.index.addEventListener("change", () => this.pick(Number(this.index.value)));
    this.badge = el("span", { class: "badge badge-warn", id: "untrained-badge", text: "untrained: the prediction is random" });
    this.truth = el("p", { id: "sample-truth", class: "sample-truth", "aria-live": "polite" });
    this.imageDiv = el("div", { class: "sample-image", id: "sample-image" });
    this.probDiv = el("div", { class: "sample-probs", id: "sample-probs" });
    this.kernelDiv = el("div", { class: "kernels", id: "conv-kernels" });
    this.mapsDiv = el("div", { class: "conv-maps", id: "conv-maps" });
    this.hand = new ConvByHand(el("div", { id: "conv-hand", class: "conv-hand" }));
    this.gallery = new Gallery(el("div", { id: "train-gallery", class: "train-gallery", hidden: true }), { ...ctx, pick: (i) => this.pick(i) });
    replace(
      root,
      el("div", { class: "train-row time-row" }, el("span", { class: "field-label", text: "Time" }), this.slider, this.stepLabel, this.play, this.badge),
      el(
        "div",
        { class: "train-row" },
        el("label", { class: "field field-inline" }, el("span", { class: "field-label", text: "Test sample" }), this.index),
        el("button", { type: "button", class: "btn btn-small", id: "sample-random", text: "Random", onclick: () => this.pick(Math.floor(Math.random() * (this.ctx.dataset()?.test_size || 1))) }),
        el("button", { type: "button", class: "btn btn-small", id: "sample-wrong", text: "A misclassified one", onclick: () => this.findWrong().catch((err) => this.ctx.report(err)) }),
      ),
      this.truth,
      el("div", { class: "sample-pair" }, this.imageDiv, this.probDiv),
      this.gallery.root,
      (this.convBox = el(
        "div",
        { class: "conv-box" },
        el("h4", { text: "conv1's kernels" }),
        this.kernelDiv,
        el("h4", { text: "The first conv layer's maps for this sample (click a cell)" }),
        this.mapsDiv,
        this.hand.root,
      )),
    );
  }

  /** The checkpoints of the training changed (a new one came, or a new training began). */
  setSteps(steps, { follow = true } = {}) {
    const at = this.current;
    this.steps = steps;
    this.slider.max = String(Math.max(0, steps.length - 1));
    const keep = at !== undefined && !follow ? steps.indexOf(at) : -1;
    this.slider.value = String(keep >= 0 ? keep : Math.max(0, steps.length - 1));
    this.current = steps[Number(this.slider.value)];
    this.stepLabel.textContent = `step ${this.current ?? 0}`;
    this.syncBadge();
  }

  syncBadge() {
    this.badge.hidden = Boolean(this.ctx.training() && this.current > 0);
    this.ctx.badge?.(!this.badge.hidden);
  }

  moveTo(step) {
    this.current = step;
    this.stepLabel.textContent = `step ${step}`;
    this.syncBadge();
    this.ctx.moved(step);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.show().catch((err) => this.ctx.report(err)), 60);
  }

  togglePlay() {
    if (this.playing) {
      clearInterval(this.playing);
      this.playing = null;
      this.play.textContent = "▶ Play";
      return;
    }
    this.play.textContent = "❚❚ Pause";
    if (Number(this.slider.value) >= this.steps.length - 1) this.slider.value = "0";
    this.playing = setInterval(() => {
      const i = Number(this.slider.value) + 1;
      if (i >= this.steps.length) return this.togglePlay();
      this.slider.value = String(i);
      this.moveTo(this.steps[i]);
    }, 900);
  }

  pick(index) {
    this.index.value = String(index);
    const train = this.ctx.store.state.train;
    train.sample = index;
    this.ctx.store.update({ train });
    this.show().catch((err) => this.ctx.report(err));
  }

  /** Try random test samples (at most 40) until the model at this step gets one wrong. */
  async findWrong() {
    const dataset = this.ctx.dataset();
    const id = this.ctx.session.id;
    if (!dataset || !id) return;
    const config = this.ctx.store.state.train.config;
    const inputName = Object.keys(this.ctx.store.state.spec.inputs)[0];
    const ref = this.checkpointRef();
    for (let tries = 0; tries < 40; tries += 1) {
      const index = Math.floor(Math.random() * dataset.test_size);
      const sample = await sampleInput(config, dataset, index, this.ctx.inputShape());
      const body = { inputs: { [inputName]: sample.maker }, capture: "none", encoding: "f32", stats: false };
      if (ref) body.checkpoint = ref;
      const out = decodePayload(Object.values((await trainApi.run(id, body)).outputs)[0]);
      const n = out.shape[out.shape.length - 1];
      const logits = Array.from(out.values.subarray(0, n));
      const truth = Array.isArray(sample.label) ? sample.label[0] : sample.label;
      if (logits.indexOf(Math.max(...logits)) !== truth) return this.pick(index);
    }
    replace(this.truth, el("span", { text: "No misclassified sample among 40 random ones: well trained." }));
  }

  checkpointRef() {
    const t = this.ctx.training();
    return t && this.current !== undefined ? { training: t.id, step: this.current } : null;
  }

  /** Run the chosen sample at the chosen step and draw what it shows. */
  async show() {
    const seq = ++this.seq;
    const dataset = this.ctx.dataset();
    const id = this.ctx.session.id;
    if (!dataset || !id) return;
    const config = this.ctx.store.state.train.config;
    const index = Number(this.index.value) || 0;
    const sample = await sampleInput(config, dataset, index, this.ctx.inputShape());
    const inputName = Object.keys(this.ctx.store.state.spec.inputs)[0];
    const body = { inputs: { [inputName]: sample.maker }, capture: "all", encoding: "f32", stats: false };
    const ref = this.checkpointRef();
    if (ref) body.checkpoint = ref;
    const res = await trainApi.run(id, body);
    if (seq !== this.seq) return;
    this.lastRun = { res, body, sample };
    this.root.lastBody = body; // what was run (the browser tests ask the API the same)
    await this.drawSample(dataset, sample, res);
    await this.drawMaps(res, body);
    await this.drawKernels(ref).catch((err) => this.ctx.report(err));
    if (this.galleryAt !== JSON.stringify(ref)) {
      this.galleryAt = JSON.stringify(ref); // the sample changed, not the step: keep it
      await this.gallery.show(ref).catch((err) => this.ctx.report(err));
    }
    performance.mark("pg:at-step-drawn");
    this.root.dataset.drawn = `${ref ? ref.step : "now"}:${index}`;
  }

  async drawSample(dataset, sample, res) {
    const out = decodePayload(Object.values(res.outputs)[0]);
    const classes = dataset.classes;
    if (Array.isArray(sample.label)) return this.drawTags(classes, sample, out);
    const n = out.shape[out.shape.length - 1];
    const probs = softmax(Array.from(out.values.subarray(0, n)));
    const pred = probs.indexOf(Math.max(...probs));
    const truth = Array.isArray(sample.label) ? sample.label[0] : sample.label;
    const name = (i) => classes[i] ?? String(i);
    const right = pred === truth;
    this.prediction = { pred, truth, right };
    replace(
      this.truth,
      el("span", { text: `True label: ${name(truth)}` }),
      " · ",
      el("span", { class: right ? "ok-text" : "error-text", id: "sample-pred", text: `prediction: ${name(pred)} (${(probs[pred] * 100).toFixed(1)} %)` }),
    );
    const { values, shape } = sample.image;
    if (shape.length === 3) {
      await heatmap(this.imageDiv, matrix(values, 0, shape[1], shape[2]), { range: [Math.min(...values), Math.max(...values)], square: true, hideTicks: true, height: 180 });
    } else replace(this.imageDiv, el("p", { class: "mono", text: `x = [${Array.from(values, (v) => v.toFixed(3)).join(", ")}]` }));
    await bars(this.probDiv, probs, { labels: classes.length ? [...classes] : null, yTitle: "probability" });
  }

  /** A tagged sentence: each word with its true tag and the model's. */
  async drawTags(classes, sample, out) {
    const vocab = Object.values(this.ctx.store.state.spec.inputs)[0].vocab || [];
    const n = out.shape[out.shape.length - 1];
    const rows = sample.label.map((truth, i) => {
      const logits = Array.from(out.values.subarray(i * n, (i + 1) * n));
      const pred = logits.indexOf(Math.max(...logits));
      const word = vocab[Math.round(sample.image.values[i])] ?? String(sample.image.values[i]);
      return el("tr", {}, el("td", { class: "mono", text: word }), el("td", { text: classes[truth] }), el("td", { class: pred === truth ? "ok-text" : "error-text", text: classes[pred] }));
    });
    const right = sample.label.every((t, i) => rows[i].lastChild.textContent === classes[t]);
    this.prediction = { right };
    replace(this.truth, el("span", { id: "sample-pred", text: right ? "Every word tagged right." : "Some words tagged wrong." }));
    replace(this.imageDiv, el("table", { class: "tag-table" }, el("thead", {}, el("tr", {}, ["word", "true", "predicted"].map((h) => el("th", { text: h })))), el("tbody", {}, rows)));
    (await plotlyReady()).purge(this.probDiv);
    replace(this.probDiv);
  }

  convName(res) {
    return Object.keys(res.activations).find((k) => res.activations[k].type === "Conv2d") || null;
  }

  async drawMaps(res, body) {
    const name = this.convName(res);
    const Plotly = await plotlyReady();
    this.convBox.hidden = !name;
    if (!name) {
      Plotly.purge(this.mapsDiv);
      replace(this.mapsDiv, el("p", { class: "muted", text: "This model has no Conv2d layer." }));
      return;
    }
    const t = decodePayload(res.activations[name].tensor);
    const [, c, h, w] = t.shape;
    const maps = Array.from({ length: c }, (_, i) => ({ z: matrix(t.values, i * h * w, h, w), title: `${name}[${i}]` }));
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of t.values) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    await heatmapGrid(this.mapsDiv, maps, { range: [lo, hi] });
    this.mapsDiv.dataset.layer = name;
    this.mapsDiv.removeAllListeners?.("plotly_click");
    this.mapsDiv.on("plotly_click", (ev) => {
      const p = ev.points[0];
      const cell = { layer: name, channel: p.curveNumber, row: p.y, col: p.x };
      this.hand.show(this.ctx.session.id, { ...cell, inputs: body.inputs, checkpoint: body.checkpoint }, maps[cell.channel].z[cell.row][cell.col]).catch((err) => this.ctx.report(err));
    });
  }

  async drawKernels(ref) {
    if (!ref) return replace(this.kernelDiv, el("p", { class: "muted", text: "Train the model to see its kernels change." }));
    const id = this.ctx.session.id;
    const url = `/api/models/${encodeURIComponent(id)}/trainings/${encodeURIComponent(ref.training)}/checkpoints/${ref.step}/weights`;
    const res = await fetch(url, { headers: await authHeaders() });
    if (!res.ok) return;
    const weights = readSafetensors(await res.arrayBuffer());
    const key = Object.keys(weights).find((k) => k.endsWith(".weight") && weights[k].shape.length === 4);
    if (!key) return replace(this.kernelDiv, el("p", { class: "muted", text: "No conv kernels in this model." }));
    const { shape, values } = weights[key];
    const [o, i, kh, kw] = shape;
    const maps = Array.from({ length: o }, (_, k) => ({ z: matrix(values, k * i * kh * kw, kh, kw), title: `${key.split(".")[0]}[${k}]` }));
    let m = 0;
    for (const v of values) m = Math.max(m, Math.abs(v));
    await heatmapGrid(this.kernelDiv, maps, { range: [-m, m], rowsPx: 60 });
  }
}
