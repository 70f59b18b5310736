/**
 * The "Why?" view: an attribution (Captum through the API) drawn over the input image,
 * and interventions: each channel of a chosen layer as a map; click a map (or its button)
 * to switch that channel off and see the prediction change (POST /intervene). The layer and
 * the channels off are kept in the page state (`why: {layer, off}`), so a share link has them.
 */

import { api } from "../api.js";
import { bars, heatmapGrid, plotlyReady, purge } from "../charts.js";
import { el, field, replace } from "../dom.js";
import { decodePayload, matrix, squeezed } from "../f16.js";
import { InputSource } from "./source.js";

const METHODS = [
  ["integrated_gradients", "Integrated Gradients"],
  ["gradients", "Gradient (signed)"],
  ["gradcam", "Grad-CAM"],
  ["saliency", "Saliency"],
  ["smoothgrad", "SmoothGrad"],
  ["occlusion", "Occlusion"],
];
const SIGNED = new Set(["integrated_gradients", "occlusion", "gradients"]);

/** The last two dims of a decoded tensor as rows for Plotly (the first map of the rest). */
function lastMap(t) {
  const { dims } = squeezed(t.shape);
  const rows = dims.length >= 2 ? dims[dims.length - 2] : 1;
  const cols = dims.length >= 1 ? dims[dims.length - 1] : 1;
  return matrix(t.values, 0, rows, cols);
}

function num(value, min, max) {
  return el("input", { type: "number", min, max, step: "any", value, class: "num-short" });
}

export class WhyView {
  /** ctx: {session, store, makers() -> input makers, report(err), apply()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.off = new Set(); // channels switched off in the chosen layer
    this.controls = {
      method: el("select", { id: "why-method" }, ...METHODS.map(([v, t]) => el("option", { value: v, text: t }))),
      target: el("select", { id: "why-target" }),
      steps: num(32, 1, 1000),
      samples: num(10, 1, 200),
      stdev: num(0.15, 0, 10),
      layer: el("select", { id: "why-layer" }),
      window: num(4, 1, 64),
      stride: num(2, 1, 64),
      chanLayer: el("select", { id: "why-channel-layer" }),
      patch: el("input", { type: "checkbox", id: "why-patch" }),
      patchSeed: num(1, 0, 2 ** 31),
      fvChannel: num(0, 0, 4096),
      fvSteps: num(64, 1, 1000),
    };
    this.fvBtn = el("button", { type: "button", class: "btn", id: "why-featvis", text: "Visualize" });
    this.fvBtn.addEventListener("click", () => this.featvis().catch((e) => this.ctx.report(e)));
    this.fvNote = el("p", { class: "why-note", role: "status", "aria-live": "polite" });
    this.fv = el("div", { id: "why-featvis-map", class: "why-overlay" });
    this.explainBtn = el("button", { type: "button", class: "btn btn-primary", id: "why-explain", text: "Explain" });
    this.source = new InputSource({ store: ctx.store, makers: ctx.makers, changed: () => this.intervene().catch((e) => this.ctx.report(e)) });
    this.overlay = el("div", { id: "why-overlay", class: "why-overlay" });
    this.note = el("p", { class: "why-note", role: "status", "aria-live": "polite" });
    this.maps = el("div", { id: "why-maps", class: "why-maps" });
    this.switches = el("div", { id: "why-switches", class: "why-switches", role: "group", "aria-label": "Channels" });
    this.bars = el("div", { id: "why-bars", class: "why-bars" });
    this.explainBtn.addEventListener("click", () => this.explain().catch((e) => this.ctx.report(e)));
    this.controls.method.addEventListener("change", () => this.showSettings());
    for (const control of [this.controls.patch, this.controls.patchSeed])
      control.addEventListener("change", () => this.off.size && this.intervene().catch((e) => this.ctx.report(e)));
    this.controls.chanLayer.addEventListener("change", () => {
      this.off.clear();
      this.remember();
      this.intervene().catch((e) => this.ctx.report(e));
    });
    const c = this.controls;
    this.settings = {
      integrated_gradients: [field("Steps", c.steps, { inline: true })],
      smoothgrad: [field("Samples", c.samples, { inline: true }), field("Noise σ", c.stdev, { inline: true })],
      gradcam: [field("Layer", c.layer, { inline: true })],
      occlusion: [field("Window", c.window, { inline: true }), field("Stride", c.stride, { inline: true })],
      saliency: [],
      gradients: [],
    };
    this.settingsBox = el("span", { class: "why-settings" });
    replace(
      root,
      el("h3", { class: "why-title", text: "Why did it predict that?" }),
      el(
        "div",
        { class: "why-controls" },
        this.source.render(),
        field("Method", c.method, { inline: true }),
        field("Class", c.target, { inline: true }),
        this.settingsBox,
        this.explainBtn,
      ),
      this.note,
      this.overlay,
      el("h3", { class: "why-title", text: "Switch channels off" }),
      el(
        "div",
        { class: "why-controls" },
        field("Layer", c.chanLayer, { inline: true }),
        field("Patch from random input, seed", c.patchSeed, { inline: true }),
        field("instead of zero", c.patch, { inline: true }),
      ),
      this.switches,
      this.maps,
      el("h4", { class: "why-title", text: "Prediction" }),
      this.bars,
      el("h3", { class: "why-title", text: "What excites a channel?" }),
      el(
        "div",
        { class: "why-controls" },
        field("Channel", c.fvChannel, { inline: true }),
        field("Steps", c.fvSteps, { inline: true }),
        this.fvBtn,
      ),
      this.fvNote,
      this.fv,
    );
    this.showSettings();
  }

  showSettings() {
    replace(this.settingsBox, ...this.settings[this.controls.method.value]);
  }

  /** Fill the selects from the model's summary (layers with maps; the classes). */
  async refresh() {
    const info = this.ctx.session.info || (await this.ctx.apply());
    this.source.render(); // a training configured since: its dataset's samples
    const key = `${info.id}:${info.version}`;
    if (this.shownFor === key) return;
    this.shownFor = key;
    this.off.clear();
    const layers = info.summary.layers.filter((l) => (l.output_shape || []).length === 4);
    const fill = (select, names, chosen) => {
      replace(select, ...names.map((n) => el("option", { value: n, text: n })));
      if (chosen) select.value = chosen;
    };
    const names = layers.map((l) => l.name);
    fill(this.controls.layer, names, names.find((n) => /conv/i.test(n) && n !== names[0]) || names[0]);
    fill(this.controls.chanLayer, names, names[0]);
    const saved = this.ctx.store.state.why; // from a share link, or this page before
    if (saved && names.includes(saved.layer)) {
      this.controls.chanLayer.value = saved.layer;
      this.off = new Set((saved.off || []).filter(Number.isInteger));
    }
    const labels = info.spec.labels || [];
    const last = info.summary.layers[info.summary.layers.length - 1];
    const classes = last ? last.output_shape[last.output_shape.length - 1] : 0;
    replace(
      this.controls.target,
      el("option", { value: "", text: "predicted" }),
      ...Array.from({ length: classes }, (_, i) => el("option", { value: String(i), text: labels[i] ?? String(i) })),
    );
    this.labels = labels.length ? labels : null;
    if (names.length) await this.intervene();
    else replace(this.maps, el("p", { class: "why-note", text: "This model has no layer with channel maps." }));
  }

  body() {
    const c = this.controls;
    const method = c.method.value;
    const body = { method, inputs: this.source.makers(), stats: false }; // the overlay needs none
    if (c.target.value !== "") body.target = Number(c.target.value);
    if (method === "integrated_gradients") body.steps = Number(c.steps.value);
    if (method === "smoothgrad") Object.assign(body, { samples: Number(c.samples.value), stdev: Number(c.stdev.value) });
    if (method === "gradcam") body.layer = c.layer.value;
    if (method === "occlusion") {
      body.window = [Number(c.window.value), Number(c.window.value)];
      body.stride = [Number(c.stride.value), Number(c.stride.value)];
    }
    return body;
  }

  async explain() {
    const info = this.ctx.session.info || (await this.ctx.apply());
    this.note.textContent = "Explaining…";
    const body = this.body();
    const first = Object.values(info.spec.inputs)[0] || {};
    if (/int|long/.test(first.dtype || "")) return this.explainTokens(info, body);
    const res = body.method === "gradients" ? await this.gradient(info, body) : await api.attribution(info.id, "attribute", body);
    this.last = res;
    const input = decodePayload(Object.values(res.inputs)[0].tensor);
    const attr = decodePayload(res.attribution.tensor);
    await this.drawOverlay(lastMap(input), lastMap(attr), SIGNED.has(res.method));
    const label = this.labels?.[res.target] ?? String(res.target);
    const delta = res.delta === undefined ? "" : `, convergence delta ${res.delta.toExponential(2)}`;
    this.note.textContent = `${res.method} for class ${label}: ${res.passes} forward pass${res.passes === 1 ? "" : "es"}, ${res.elapsed_ms.toFixed(1)} ms on the worker (the method ${res.compute_ms.toFixed(1)} ms)${delta}.`;
    this.root.dataset.method = res.method;
  }

  /**
   * Token inputs get no gradient: explain each word by the size (L2 norm) of the gradient at
   * its embedding, d(class score summed over the words)/d(embedding), drawn as bars per word.
   */
  async explainTokens(info, body) {
    const emb = info.summary.layers.find((l) => l.type === "Embedding");
    if (!emb) throw new Error("Token input without an Embedding layer: nothing to attribute to.");
    const req = { inputs: body.inputs, layers: [emb.name], encoding: "f32", downsample: false };
    if (body.target !== undefined) req.target = body.target;
    const res = await api.attribution(info.id, "gradients", req);
    const run = { inputs: body.inputs, capture: "none", encoding: "f32", stats: false };
    const made = await api.run(info.id, run);
    const tokens = Object.values(made.inputs)[0].tokens || [];
    const g = decodePayload(res.activations[emb.name].tensor);
    const dim = g.shape[g.shape.length - 1];
    const norms = Array.from({ length: g.values.length / dim }, (_, i) =>
      Math.hypot(...g.values.subarray(i * dim, (i + 1) * dim)),
    );
    purge(this.overlay);
    await bars(this.overlay, norms, { labels: tokens.length === norms.length ? tokens : null, highlight: true, yTitle: "|gradient|" });
    const label = this.labels?.[res.target] ?? String(res.target);
    this.note.textContent = `Gradient at ${emb.name} per word, for class ${label} (summed over the words).`;
    this.root.dataset.method = "tokens";
  }

  /** d(class score)/d(input) from /gradients, in the shape explain() draws. */
  async gradient(info, body) {
    const req = { inputs: body.inputs, layers: "none", encoding: "f32", downsample: false, stats: false };
    if (body.target !== undefined) req.target = body.target;
    const res = await api.attribution(info.id, "gradients", req);
    const name = Object.keys(res.inputs)[0];
    if (!name) throw new Error("This model's inputs are token ids: no gradient reaches them.");
    const run = { inputs: body.inputs, capture: "none", encoding: "f32", stats: false };
    const made = await api.run(info.id, run); // the input itself, to draw under the gradient
    return { ...res, method: "gradients", passes: 1, attribution: res.inputs[name], inputs: made.inputs };
  }

  async drawOverlay(image, attr, signed) {
    const Plotly = await plotlyReady();
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of attr) for (const v of row) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
    const m = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    const traces = [
      { type: "heatmap", z: image, colorscale: "Greys", reversescale: true, showscale: false, hoverinfo: "skip" },
      {
        type: "heatmap",
        z: attr,
        opacity: 0.6,
        colorscale: signed ? "RdBu" : "Hot", // Plotly's RdBu: blue low, red high (as the Run tab)
        reversescale: false,
        zmin: signed ? -m : 0,
        zmax: m,
        colorbar: { thickness: 10, len: 0.9, outlinewidth: 0 },
        hovertemplate: "row %{y}, col %{x}<br>attribution %{z:.4g}<extra></extra>",
      },
    ];
    const axis = { showgrid: false, zeroline: false, showticklabels: false, ticks: "" };
    const layout = {
      height: 320,
      width: 360,
      margin: { l: 10, r: 10, t: 10, b: 10 },
      xaxis: { ...axis, constrain: "domain" },
      yaxis: { ...axis, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
      paper_bgcolor: "rgba(0,0,0,0)",
    };
    purge(this.overlay);
    await Plotly.newPlot(this.overlay, traces, layout, { displaylogo: false, responsive: true });
  }

  /** Run with the switched-off channels zeroed; draw the layer's maps and the prediction. */
  async intervene() {
    const info = this.ctx.session.info || (await this.ctx.apply());
    const layer = this.controls.chanLayer.value;
    const chosen = [...this.off].sort((a, b) => a - b);
    const iv = { layer, op: "zero", channels: chosen };
    if (this.controls.patch.checked) {
      // the clean run: the same layer on another input (the corrupted run is this one)
      const name = Object.keys(info.spec.inputs)[0];
      iv.op = "patch";
      iv.source = { [name]: { kind: "random", distribution: "normal", seed: Number(this.controls.patchSeed.value) } };
    }
    const interventions = chosen.length ? [iv] : [];
    const body = { inputs: this.source.makers(), capture: [layer], encoding: "f32", stats: false, interventions };
    const seq = (this.seq = (this.seq || 0) + 1);
    const res = await api.attribution(info.id, "intervene", body);
    if (seq !== this.seq) return; // a newer switch was pressed meanwhile: its answer wins
    this.lastIntervention = res;
    const t = decodePayload(res.activations[layer].tensor);
    const [, channels, rows, cols] = t.shape;
    const maps = [];
    let lo = Infinity;
    let hi = -Infinity;
    for (let c = 0; c < channels; c += 1) {
      const z = matrix(t.values, c * rows * cols, rows, cols);
      for (const row of z) for (const v of row) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
      const mark = this.controls.patch.checked ? " patched" : " off";
      maps.push({ z, title: `${layer}[${c}]${this.off.has(c) ? mark : ""}` });
    }
    this.drawSwitches(channels);
    purge(this.maps);
    await heatmapGrid(this.maps, maps, { range: [lo, hi] });
    this.maps.removeAllListeners?.("plotly_click");
    this.maps.on?.("plotly_click", (e) => this.toggle(e.points[0].curveNumber));
    const out = decodePayload(Object.values(res.outputs)[0]);
    await bars(this.bars, Array.from(out.values), { labels: this.labels, yTitle: "output" });
    this.bars.dataset.values = JSON.stringify(Array.from(out.values));
  }

  /** Optimize an input from seeded noise to excite the chosen layer's channel (/featvis). */
  async featvis() {
    const info = this.ctx.session.info || (await this.ctx.apply());
    const layer = this.controls.chanLayer.value;
    const body = { layer, channel: Number(this.controls.fvChannel.value), steps: Number(this.controls.fvSteps.value) };
    this.fvNote.textContent = "Optimizing…";
    const res = await api.attribution(info.id, "featvis", body);
    const z = lastMap(decodePayload(res.input.tensor));
    const first = res.objective[0] ?? 0;
    const last = res.objective[res.objective.length - 1] ?? 0;
    this.fvNote.textContent = `${layer}[${body.channel}]: ${res.steps} steps, mean activation ${first.toFixed(3)} → ${last.toFixed(3)}.`;
    const Plotly = await plotlyReady();
    const axis = { showgrid: false, zeroline: false, showticklabels: false, ticks: "" };
    purge(this.fv);
    await Plotly.newPlot(
      this.fv,
      [{ type: "heatmap", z, colorscale: "Greys", reversescale: true, colorbar: { thickness: 10 } }],
      {
        height: 260,
        width: 300,
        margin: { l: 10, r: 10, t: 10, b: 10 },
        xaxis: { ...axis, constrain: "domain" },
        yaxis: { ...axis, autorange: "reversed", scaleanchor: "x", constrain: "domain" },
        paper_bgcolor: "rgba(0,0,0,0)",
      },
      { displaylogo: false, responsive: true },
    );
  }

  drawSwitches(channels) {
    const buttons = Array.from({ length: channels }, (_, c) =>
      el("button", {
        type: "button",
        class: "btn btn-quiet why-switch",
        text: String(c),
        title: `Switch channel ${c} ${this.off.has(c) ? "on" : "off"}`,
        "aria-pressed": String(this.off.has(c)),
        dataset: { channel: String(c) },
        onclick: () => this.toggle(c),
      }),
    );
    replace(this.switches, el("span", { class: "field-label", text: "Off:" }), ...buttons);
  }

  toggle(channel) {
    if (this.off.has(channel)) this.off.delete(channel);
    else this.off.add(channel);
    this.remember();
    this.intervene().catch((e) => this.ctx.report(e));
  }

  remember() {
    const off = [...this.off].sort((a, b) => a - b);
    this.ctx.store.update({ why: { layer: this.controls.chanLayer.value, off } });
  }
}
