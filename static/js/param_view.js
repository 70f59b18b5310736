/**
 * One parameter's values: a matrix as a heatmap (rows = outputs, columns = inputs), a
 * convolution weight as a grid of its kernels (one heatmap, kernels side by side with
 * gaps: columns = output channels, rows = input channels), a vector as bars; with the
 * histogram, statistics and downloads.
 */

import { api } from "./api.js";
import { bars, heatmap, purge } from "./charts.js";
import { downloadButtons } from "./download.js";
import { el, fmtShape, replace } from "./dom.js";
import { decodePayload, matrix } from "./f16.js";
import { histogram, statsLine } from "./hist.js";

const MAX_SIDE = 256;
const MAX_KERNELS_OUT = 64;
const MAX_KERNELS_IN = 16;

/** Kernels (O, I, kh, kw) tiled into one matrix with a blank line between them. */
function mosaic(values, [o, i, kh, kw]) {
  const showO = Math.min(o, MAX_KERNELS_OUT);
  const showI = Math.min(i, MAX_KERNELS_IN);
  const rows = showI * (kh + 1) - 1;
  const cols = showO * (kw + 1) - 1;
  const z = Array.from({ length: rows }, () => new Array(cols).fill(null));
  const hover = Array.from({ length: rows }, () => new Array(cols).fill(""));
  for (let a = 0; a < showO; a += 1) {
    for (let b = 0; b < showI; b += 1) {
      for (let r = 0; r < kh; r += 1) {
        for (let c = 0; c < kw; c += 1) {
          const y = b * (kh + 1) + r;
          const x = a * (kw + 1) + c;
          z[y][x] = values[((a * i + b) * kh + r) * kw + c];
          hover[y][x] = `out ${a}, in ${b}, [${r}, ${c}]`;
        }
      }
    }
  }
  const notes = [];
  if (showO < o || showI < i)
    notes.push(`Showing ${showO} of ${o} output and ${showI} of ${i} input channels.`);
  return { z, hover, notes };
}

/** Block means, so that no side is longer than MAX_SIDE. */
function shrink(values, rows, cols) {
  const fr = Math.ceil(rows / MAX_SIDE);
  const fc = Math.ceil(cols / MAX_SIDE);
  if (fr === 1 && fc === 1) return { z: matrix(values, 0, rows, cols), note: null };
  const R = Math.ceil(rows / fr);
  const C = Math.ceil(cols / fc);
  const z = Array.from({ length: R }, () => new Array(C).fill(0));
  const n = Array.from({ length: R }, () => new Array(C).fill(0));
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      z[(r / fr) | 0][(c / fc) | 0] += values[r * cols + c];
      n[(r / fr) | 0][(c / fc) | 0] += 1;
    }
  }
  for (let r = 0; r < R; r += 1) for (let c = 0; c < C; c += 1) z[r][c] /= n[r][c];
  return { z, note: `Shown as ${R}×${C} block means of the ${rows}×${cols} matrix.` };
}

export async function showParameter(root, modelId, name) {
  for (const fig of root.querySelectorAll(".js-plotly-plot")) purge(fig);
  replace(root, el("p", { class: "muted", text: `Loading ${name}…` }));
  const res = await api.parameter(modelId, name);
  const t = decodePayload(res.tensor);
  const shape = t.shape;
  const fig = el("div", { class: "fig param-fig", id: "param-fig" });
  const notes = [];
  const range = [res.stats.min, res.stats.max];
  let kind = "";
  const head = el(
    "h4",
    { class: "param-head" },
    el("span", { class: "mono", text: name }),
    el("span", { class: "shape", text: fmtShape(shape) }),
    el("span", {
      class: "muted",
      text: res.requires_grad ? "requires_grad=True" : "requires_grad=False (frozen)",
    }),
  );
  const side = el(
    "div",
    { class: "act-side" },
    histogram(res.stats.histogram, { label: `Histogram of ${name}` }),
    statsLine(res.stats),
    downloadButtons(name, t, res.stats),
  );
  const col = el("div", { class: "fig-col" }, fig);
  replace(root, head, el("div", { class: "act-body" }, col, side));
  const width = Math.max(fig.clientWidth - 140, 120); // the plot area, less margins and colour bar
  if (shape.length === 4 || shape.length === 3) {
    const dims = shape.length === 4 ? shape : [shape[0], shape[1], 1, shape[2]];
    const m = mosaic(t.values, dims);
    notes.push(
      ...m.notes,
      "Each small square is one kernel: columns are output channels, rows input channels.",
    );
    kind = "kernels";
    const rows = m.z.length;
    const cols = m.z[0].length;
    const height = Math.round(Math.min(Math.max(width * (rows / cols) + 70, 160), 520));
    await heatmap(fig, m.z, {
      range,
      customdata: m.hover,
      square: true,
      hideTicks: true,
      height,
      xTitle: "output channel →",
      yTitle: "input channel →",
    });
  } else if (shape.length === 2) {
    const s = shrink(t.values, shape[0], shape[1]);
    if (s.note) notes.push(s.note);
    kind = "matrix";
    await heatmap(fig, s.z, {
      range,
      xTitle: `input feature (${shape[1]})`,
      yTitle: `output (${shape[0]})`,
      height: Math.min(Math.max(180, 40 + s.z.length * 6), 460),
    });
  } else if (shape.length === 1 && shape[0] <= 256) {
    kind = "bars";
    await bars(fig, Array.from(t.values), { highlight: false });
  } else {
    kind = "strip";
    await heatmap(fig, [Array.from(t.values.subarray(0, 4096))], {
      range,
      height: 110,
      xTitle: "index",
    });
  }
  fig.dataset.drawn = kind;
  for (const note of notes) col.append(el("p", { class: "note", text: note }));
}
