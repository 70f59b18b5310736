/**
 * Dropout: N passes of the same seeded input through Dropout or Dropout2d with p. One mask
 * heatmap per pass (1 kept, 0 zeroed), the zero fraction of each pass against p, the
 * 1/(1−p) scaling of the survivors, and eval mode as the identity.
 */

import { api } from "../api.js";
import { heatmapGrid } from "../charts.js";
import { el, fmtNum, replace } from "../dom.js";
import { controlForm } from "./form.js";
import { drawn, groupedBars, hline, rows } from "./plot.js";

export const SCHEMA = [
  // options: [] are filled from GET /api/effects (the request schema's choices) by main.js
  { key: "layer", label: "Layer", kind: "select", options: [], value: "Dropout" },
  { key: "p", label: "p (probability of zeroing)", kind: "range", min: 0, max: 0.95, step: 0.05, value: 0.5 },
  { key: "passes", label: "Passes", kind: "number", min: 1, max: 12, value: 4 },
  { key: "mode", label: "Mode", kind: "select", options: [], value: "train" },
  { key: "size", label: "Input size (n×n)", kind: "number", min: 2, max: 64, value: 16 },
  { key: "seed", label: "Seed", kind: "number", min: 0, max: 1e9, value: 0 },
];
/** The API's tutorial case as this form's values: p, passes, mode and the input's size. */
const tutorialValues = (t) => ({
  layer: "Dropout",
  p: t.p,
  passes: t.passes,
  mode: t.mode,
  size: t.source.shape[t.source.shape.length - 1],
  seed: 0,
});

function request(v) {
  const n = v.size ?? 16;
  // Dropout2d zeroes whole channels: n channels of 1×n, so a dropped channel is a row;
  // Dropout1d reads [1, n, n] as (N, C, L): a dropped channel is a row too
  const shape = v.layer === "Dropout2d" ? [1, n, 1, n] : [1, n, n];
  return {
    source: { kind: "random", distribution: "uniform", shape, seed: 0 },
    layer: v.layer,
    p: v.p ?? 0.5,
    passes: v.passes ?? 4,
    mode: v.mode,
    seed: v.seed ?? 0,
  };
}

/** A mask as n × n whatever the layer's shape (size-1 dims dropped). */
function square(payload) {
  const dims = payload.shape.filter((d) => d !== 1);
  const cols = dims[dims.length - 1] ?? 1;
  return rows({ ...payload, shape: [payload.shape.reduce((a, b) => a * b, 1) / cols, cols] });
}

export function createDropout(panel, { values, onState, run, info }) {
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  const tutorial = el("button", { type: "button", class: "btn", id: "drop-tutorial", text: `Tutorial: p = ${info.tutorial.p}, ${info.tutorial.passes} passes` });
  tutorial.addEventListener("click", () => {
    form.set(tutorialValues(info.tutorial));
    update(form.values());
  });
  const call = el("p", { class: "fx-call", id: "drop-call" });
  const status = el("p", { class: "fx-status", role: "status", id: "drop-status" });
  const figMasks = el("div", { class: "fig", id: "drop-masks" });
  const figZero = el("div", { class: "fig", id: "drop-zero" });
  const notes = el("ul", { class: "fx-notes", id: "drop-notes" });
  replace(
    panel,
    el("div", { class: "fx-bar" }, form.root, tutorial),
    call,
    status,
    el("figure", { class: "fx-fig" }, el("figcaption", { text: "Mask per pass (1 kept, 0 zeroed)" }), figMasks),
    el("figure", { class: "fx-fig" }, el("figcaption", { text: "Fraction zeroed per pass; dashed: p" }), figZero),
    notes,
  );

  async function update(v) {
    onState(v);
    const r = await run(status, () => api.effect("dropout", request(v)));
    if (!r) return;
    call.textContent = `${r.torch_call}, ${r.mode} mode, input ${r.input.shape.join("×")}`;
    const maps = r.passes.map((pass, i) => ({
      z: square(pass.mask),
      title: `pass ${i + 1}: ${(100 * pass.zero_fraction).toFixed(0)}% zero`,
    }));
    await heatmapGrid(figMasks, maps, { range: [0, 1] });
    drawn(figMasks);
    const x = r.zero_fractions.map((_, i) => `pass ${i + 1}`);
    await groupedBars(figZero, [{ name: "zero fraction", x, y: r.zero_fractions }], {
      shapes: [hline(r.expected_zero_fraction)],
      yTitle: "fraction zeroed",
      yRange: [0, 1],
    });
    const items = [
      r.mode === "train"
        ? `Mean zero fraction ${fmtNum(r.mean_zero_fraction)} against p = ${fmtNum(r.p)}.`
        : `Eval mode: dropout is off, so nothing is zeroed (mean zero fraction ${fmtNum(r.mean_zero_fraction)}); p = ${fmtNum(r.p)} acts in training only.`,
      `Survivors are scaled by ${fmtNum(r.scale)}${r.mode === "train" ? " = 1/(1−p)" : ""}: ${r.survivors_scaled ? "yes" : "no"} (max error ${fmtNum(r.max_scaling_error)}).`,
      r.mode === "eval"
        ? `Eval mode: every pass equals the input (identity: ${r.identity ? "yes" : "no"}).`
        : `Passes differ from each other: ${r.passes_differ ? "yes" : "no"}.`,
    ];
    replace(notes, items.map((t) => el("li", { text: t })));
  }

  return { refresh: () => update(form.values()), values: () => form.values() };
}
