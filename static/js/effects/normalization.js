/**
 * Normalization: source·scale + offset through a norm layer; before/after histograms, the
 * per-channel mean and std before and after, the output heatmap (train or eval), and the
 * running mean after k training-mode calls.
 */

import { api } from "../api.js";
import { heatmap } from "../charts.js";
import { el, fmtNum, replace } from "../dom.js";
import { histogram } from "../hist.js";
import { controlForm } from "./form.js";
import { drawn, flat, groupedBars, lines, rows } from "./plot.js";

export const SCHEMA = [
  // options: [] are filled from GET /api/effects (the request schema's choices) by main.js
  { key: "layer", label: "Layer", kind: "select", options: [], value: "BatchNorm1d" },
  { key: "scale", label: "Scale", kind: "number", step: "any", value: 20 },
  { key: "offset", label: "Offset", kind: "number", step: "any", value: 5 },
  { key: "mode", label: "Mode", kind: "select", options: [], value: "train" },
  { key: "steps", label: "Training steps k", kind: "number", min: 0, max: 1000, value: 1 },
  { key: "momentum", label: "Momentum", kind: "number", min: 0, max: 1, step: 0.05, value: 0.1 },
];
/** The API's tutorial case as this form's values (one definition: the request schema's). */
const tutorialValues = (t) => ({
  layer: t.layer,
  scale: t.scale,
  offset: t.offset,
  mode: t.mode,
  steps: t.steps,
});

function request(v) {
  const shape = v.layer.endsWith("2d") ? [2, 4, 4, 4] : [1, 4, 4];
  return {
    source: { kind: "random", distribution: "uniform", shape, seed: 0 },
    layer: v.layer,
    scale: v.scale ?? 20,
    offset: v.offset ?? 0,
    mode: v.mode,
    steps: v.steps ?? 1,
    momentum: v.momentum,
  };
}

/** Values as (channels × the rest) for a heatmap, channels along dim channel_dim = 1. */
function byChannel(payload) {
  const shape = payload.shape;
  if (shape.length < 3) return rows(payload);
  const values = flat(payload);
  const [n, c] = shape;
  const rest = values.length / (n * c);
  return Array.from({ length: c }, (_, ch) =>
    Array.from({ length: n }, (_, b) =>
      values.slice((b * c + ch) * rest, (b * c + ch + 1) * rest),
    ).flat(),
  );
}

export function createNormalization(panel, { values, onState, run, info }) {
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  const tutorial = el("button", {
    type: "button",
    class: "btn",
    id: "norm-tutorial",
    text: "Tutorial: rand(1,4,4)×20+5",
  });
  tutorial.addEventListener("click", () => {
    form.set(tutorialValues(info.tutorial));
    update(form.values());
  });
  const call = el("p", { class: "fx-call", id: "norm-call" });
  const status = el("p", { class: "fx-status", role: "status", id: "norm-status" });
  const hists = el("div", { class: "fx-grid2", id: "norm-hists" });
  const figOut = el("div", { class: "fig", id: "norm-out" });
  const figMean = el("div", { class: "fig", id: "norm-mean" });
  const figStd = el("div", { class: "fig", id: "norm-std" });
  const figRun = el("div", { class: "fig", id: "norm-running" });
  const notes = el("ul", { class: "fx-notes", id: "norm-notes" });
  replace(
    panel,
    el("div", { class: "fx-bar" }, form.root, tutorial),
    call,
    status,
    hists,
    el(
      "div",
      { class: "fx-grid2" },
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Per-channel mean" }), figMean),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Per-channel std" }), figStd),
      el(
        "figure",
        { class: "fx-fig" },
        el("figcaption", { text: "Output (rows: channels)", id: "norm-out-cap" }),
        figOut,
      ),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Running mean" }), figRun),
    ),
    notes,
  );

  async function update(v) {
    onState(v);
    const r = await run(status, () => api.effect("normalization", request(v)));
    if (!r) return;
    call.textContent = `${r.torch_call}, ${r.mode} mode, input ${r.input.shape.join("×")}`;
    replace(
      hists,
      el(
        "figure",
        { class: "fx-fig" },
        el("figcaption", { text: `Before: mean ${fmtNum(r.before_stats.mean)}` }),
        histogram(r.before_stats.histogram, { label: "Values before" }),
      ),
      el(
        "figure",
        { class: "fx-fig" },
        el("figcaption", { text: `After (${r.mode}): mean ${fmtNum(r.after_stats.mean)}` }),
        histogram(r.after_stats.histogram, { label: "Values after" }),
      ),
    );
    const meanB = flat(r.channels_before.mean);
    const mean = [
      { name: "before", y: meanB },
      { name: "after", y: flat(r.channels_after.mean) },
    ];
    await groupedBars(figMean, mean, { xTitle: "channel" });
    const std = [
      { name: "before", y: flat(r.channels_before.std) },
      { name: "after", y: flat(r.channels_after.std) },
    ];
    await groupedBars(figStd, std, { xTitle: "channel" });
    const z = byChannel(r.output);
    const vals = z.flat();
    await heatmap(figOut, z, { range: [Math.min(...vals), Math.max(...vals)], height: 200 });
    drawn(figOut);
    const items = [];
    if (r.running) {
      const hist = rows(r.running.history_mean);
      const steps = hist.map((_, i) => i);
      const series = hist[0].map((_, ch) => ({ name: `channel ${ch}`, x: steps, y: hist.map((h) => h[ch]) }));
      await lines(figRun, series, {
        xTitle: "training-mode calls",
        yTitle: "running mean",
        integerX: true,
        xMax: steps.length - 1,
      });
      items.push(`Running mean after ${r.running.steps} step(s): ${flat(r.running.mean).map(fmtNum).join(", ")} (${r.running.update}).`);
      items.push("Eval mode normalizes with these running statistics, not the batch's.");
    } else {
      figRun.replaceChildren(el("p", { class: "muted", text: "This layer keeps no running statistics." }));
    }
    if (r.weight) items.push(`Affine weight ${flat(r.weight).map(fmtNum).join(", ")}; bias ${flat(r.bias).map(fmtNum).join(", ")}.`);
    items.push(`Batch statistics: ${r.batch_stats.over}, ${r.batch_stats.count} values each.`);
    replace(notes, items.map((t) => el("li", { text: t })));
  }

  return { refresh: () => update(form.values()), values: () => form.values() };
}
