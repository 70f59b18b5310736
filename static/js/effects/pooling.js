/**
 * Pooling: a seeded random input through max / avg / min pooling or their adaptive forms,
 * in 2-D (an n×n map) or 1-D (a sequence of n values, one row), with stride, padding,
 * dilation, ceil_mode and count_include_pad as in torch. Input and output are heatmaps;
 * hovering or clicking an output cell (or choosing it in the list, by keyboard) outlines the
 * input cells it summarizes (each one when dilation spreads them) and, for max and min, the
 * winning cell. The input can also be a layer's activation from one of the workspace's
 * models (one plane of it drawn: a channel's map, or a channel's row in 1-D).
 */

import { api } from "../api.js";
import { heatmap, plotlyReady } from "../charts.js";
import { el, fmtNum, replace } from "../dom.js";
import { controlForm } from "./form.js";
import { modelSourcePicker, planes } from "./model_source.js";
import { drawn, flat } from "./plot.js";

export const SCHEMA = [
  // options: [] are filled from GET /api/effects (the request schema's choices) by main.js
  { key: "op", label: "Operation", kind: "select", options: [], value: "max" },
  {
    key: "dims",
    label: "Dimensions",
    kind: "select",
    options: ["2", "1"],
    value: "2",
    hint: "1: a row of n values",
  },
  { key: "size", label: "Input size (n)", kind: "number", min: 1, max: 32, value: 6 },
  { key: "kernel", label: "Kernel size", kind: "number", min: 1, max: 32, value: 3 },
  { key: "stride", label: "Stride (empty: kernel)", kind: "number", min: 1, max: 32, value: null },
  { key: "padding", label: "Padding", kind: "number", min: 0, max: 16, value: 0 },
  {
    key: "dilation",
    label: "Dilation (max, min)",
    kind: "number",
    min: 1,
    max: 8,
    value: 1,
    hint: "gaps between the cells a window reads",
  },
  { key: "ceil", label: "ceil_mode", kind: "checkbox", value: false, hint: "round the output size up" },
  {
    key: "include_pad",
    label: "count_include_pad (avg)",
    kind: "checkbox",
    value: true,
    hint: "padding zeros count in the divisor",
  },
  {
    key: "output",
    label: "Output size (adaptive)",
    kind: "number",
    min: 1,
    max: 32,
    value: 2,
    hint: "adaptive pooling picks the windows",
  },
  { key: "seed", label: "Seed", kind: "number", min: 0, max: 1e9, value: 0 },
];
export const TUTORIAL = {
  op: "max",
  dims: "2",
  size: 6,
  kernel: 3,
  stride: null,
  padding: 0,
  dilation: 1,
  ceil: false,
  include_pad: true,
  output: 2,
  seed: 0,
};

const dimsOf = (v) => (String(v.dims) === "1" ? 1 : 2);

/** The /api/effects/pooling body: only the arguments the chosen operation takes; the input
 * is `source` (a model's layer) when given, else seeded uniform values. */
export function request(v, source = null) {
  const op = SCHEMA[0].options.includes(v.op) ? v.op : "max";
  const dims = dimsOf(v);
  const n = v.size ?? 6;
  const body = {
    source: source ?? {
      kind: "random",
      distribution: "uniform",
      shape: dims === 1 ? [1, n] : [1, n, n], // one channel
      seed: v.seed ?? 0,
    },
    op,
    dims,
  };
  if (op.startsWith("adaptive")) {
    body.kernel_size = null;
    body.output_size = v.output ?? 2;
    return body;
  }
  body.kernel_size = v.kernel ?? 3;
  body.stride = v.stride ?? null;
  body.padding = v.padding ?? 0;
  body.ceil_mode = v.ceil === true;
  if (op === "avg") body.count_include_pad = v.include_pad !== false;
  else body.dilation = v.dilation ?? 1;
  return body;
}

/** One plane of a payload as rows: plane k of the H×W maps (2-D) or of the rows (1-D). */
function plane(payload, k, dims) {
  const shape = payload.shape;
  const W = shape[shape.length - 1];
  const H = dims === 2 ? shape[shape.length - 2] : 1;
  const values = flat(payload).slice(k * H * W, (k + 1) * H * W);
  return Array.from({ length: H }, (_, i) => values.slice(i * W, (i + 1) * W));
}

export function createPooling(panel, { values, onState, run }) {
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  const picker = modelSourcePicker({ values, onChange: () => update(form.values()) });
  const tutorial = el("button", {
    type: "button",
    class: "btn",
    id: "pool-tutorial",
    text: "Tutorial: 6×6 through MaxPool2d(3)",
  });
  tutorial.addEventListener("click", () => {
    form.set(TUTORIAL);
    update(form.values());
  });
  const call = el("p", { class: "fx-call", id: "pool-call" });
  const status = el("p", { class: "fx-status", role: "status", id: "pool-status" });
  const figIn = el("div", { class: "fig", id: "pool-in" });
  const figOut = el("div", { class: "fig", id: "pool-out" });
  const cell = el("select", { id: "pool-cell" });
  const readout = el("p", { class: "fx-readout", id: "pool-readout", "aria-live": "polite" });
  cell.addEventListener("change", () => highlight(Number(cell.value)));
  replace(
    panel,
    el("div", { class: "fx-bar" }, form.root, tutorial),
    picker.root,
    call,
    status,
    el(
      "div",
      { class: "fx-grid2" },
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Input" }), figIn),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Output" }), figOut),
    ),
    el(
      "div",
      { class: "fx-cell" },
      el("label", { for: "pool-cell", class: "field-label", text: "Output cell" }),
      cell,
    ),
    readout,
  );
  let result = null;
  let view = null; // the drawn plane: {zin, zout, outFlat, winFlat}

  async function update(v) {
    onState({ ...v, ...picker.state() });
    await picker.setDims(dimsOf(v));
    const source = picker.source();
    // only the arguments the operation takes stay editable (as request() sends them)
    const adaptive = String(v.op).startsWith("adaptive");
    const takes = {
      kernel: !adaptive,
      stride: !adaptive,
      padding: !adaptive,
      ceil: !adaptive,
      dilation: !adaptive && v.op !== "avg",
      include_pad: v.op === "avg",
      output: adaptive,
      size: !source, // a model's layer brings its own input
      seed: !source,
    };
    for (const [key, on] of Object.entries(takes)) form.inputs[key].control.disabled = !on;
    const r = await run(status, () => api.effect("pooling", request(v, source)));
    if (!r) return;
    result = r;
    const k = Math.min(picker.channel(), planes(r.input.shape, r.dims) - 1);
    const zin = plane(r.input, k, r.dims);
    const zout = plane(r.output, k, r.dims);
    const per = zout.length * zout[0].length;
    view = {
      zin,
      zout,
      outFlat: zout.flat(),
      winFlat: r.winners ? flat(r.winners).slice(k * per, (k + 1) * per) : null,
    };
    const which = source ? `; ${source.layer}, plane ${k}` : "";
    const sizes = `input ${r.input.shape.join("×")} → output ${r.output.shape.join("×")}`;
    call.textContent = `${r.torch_call}: ${sizes}${which}`;
    const all = zin.flat();
    const range = [Math.min(...all), Math.max(...all)];
    // 2-D: square maps; 1-D: one row of positions
    const look =
      r.dims === 1
        ? { range, height: 150, xTitle: "position", yTitle: "" }
        : { range, square: true, height: 340, xTitle: "col", yTitle: "row" };
    await heatmap(figIn, zin, look);
    await heatmap(figOut, zout, look);
    drawn(figIn);
    drawn(figOut);
    figOut.on("plotly_hover", (e) => pick(e));
    figOut.on("plotly_click", (e) => pick(e));
    const cols = zout[0].length;
    const name = (i, j) => (r.dims === 1 ? String(j) : `(${i}, ${j})`);
    replace(
      cell,
      zout.flatMap((row, i) =>
        row.map((val, j) =>
          el("option", { value: String(i * cols + j), text: `${name(i, j)} = ${fmtNum(val)}` }),
        ),
      ),
    );
    highlight(0);
  }

  function pick(e) {
    const p = e.points && e.points[0];
    if (!p) return;
    const idx = p.y * view.zout[0].length + p.x;
    cell.value = String(idx);
    highlight(idx);
  }

  async function highlight(idx) {
    if (!result) return;
    const Plotly = await plotlyReady();
    const cols = view.zout[0].length;
    const i = Math.floor(idx / cols);
    const j = idx % cols;
    const oneD = result.dims === 1;
    // 1-D: the one row of the strip, and the windows along its positions
    const rIdx = oneD ? [0] : result.windows[0].cells[i].indices;
    const cIdx = result.windows[oneD ? 0 : 1].cells[j].indices;
    const box = (r0, r1, c0, c1, color, dash) => ({
      type: "rect",
      x0: c0 - 0.5,
      x1: c1 + 0.5,
      y0: r0 - 0.5,
      y1: r1 + 0.5,
      line: { color, width: 3, dash },
    });
    const shapes = [];
    const contiguous = (ix) => ix.every((v, k) => k === 0 || v === ix[k - 1] + 1);
    if (rIdx.length && cIdx.length && contiguous(rIdx) && contiguous(cIdx)) {
      shapes.push(box(rIdx[0], rIdx[rIdx.length - 1], cIdx[0], cIdx[cIdx.length - 1], "#e69f00"));
    } else {
      // dilation spreads the window: outline each cell it reads
      for (const r of rIdx) for (const c of cIdx) shapes.push(box(r, r, c, c, "#e69f00"));
    }
    const value = view.outFlat[idx];
    const what = result.op.replace("adaptive_", "adaptive ");
    let text = oneD
      ? `Output ${j} = ${fmtNum(value)}: the ${what} of input positions ${cIdx.join(", ")}`
      : `Output (${i}, ${j}) = ${fmtNum(value)}: the ${what} of input rows ` +
        `${rIdx.join(", ")} × columns ${cIdx.join(", ")}`;
    if (view.winFlat) {
      const w = view.winFlat[idx]; // the flat index within the plane, as torch's
      const W = view.zin[0].length;
      const wr = Math.floor(w / W);
      const wc = w % W;
      shapes.push(box(wr, wr, wc, wc, "#000000", "dot"));
      text += oneD ? `; the winner is input ${wc}.` : `; the winner is input (${wr}, ${wc}).`;
    } else {
      text += ".";
    }
    readout.textContent = text;
    await Plotly.relayout(figIn, { shapes });
    await Plotly.relayout(figOut, { shapes: [box(i, i, j, j, "#e69f00")] });
  }

  return {
    refresh: async () => {
      await picker.ready();
      return update(form.values());
    },
    values: () => ({ ...form.values(), ...picker.state() }),
  };
}
