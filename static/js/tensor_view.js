/**
 * Which chart fits a tensor, decided by its shape once size-1 dimensions are dropped:
 * 3-D (channels or heads × H × W) -> a grid of heatmaps, one per channel; 2-D (time ×
 * feature, rows × columns) -> one heatmap; 1-D -> bars (a strip heatmap when long);
 * 0-D -> the number. Higher ranks show their first slice, and say so.
 */

import { bars, heatmap, heatmapGrid } from "./charts.js";
import { fmtNum, fmtShape } from "./dom.js";
import { matrix, squeezed } from "./f16.js";
import { paintGrid } from "./map_canvas.js";

export const MAX_MAPS = 64;
const MAX_BARS = 256;

function rangeOf(values, stats) {
  if (stats && stats.min !== null && stats.min !== undefined) return [stats.min, stats.max];
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/**
 * Plan the view of a decoded tensor. opts: stats, labels (class names), tokens (words),
 * mapName ("ch" or "head"). Returns {kind, notes, draw(div) -> Promise}, and for a grid of
 * maps without words or attention also paint(div, width): the same maps at once on canvases
 * (map_canvas.js), for Plotly's figure to replace. A tensor decoded from u8 (approx) is
 * drawn without numbers: its hover says the exact value is loading.
 */
export function planView(tensor, opts = {}) {
  const { stats = null, labels = null, tokens = null, mapName = "ch" } = opts;
  const { dims } = squeezed(tensor.shape);
  const values = tensor.values;
  const exact = !tensor.approx;
  const notes = [];
  if (tensor.trueShape)
    notes.push(
      `Downsampled for display: ${fmtShape(tensor.trueShape)} shown as ${fmtShape(tensor.shape)}.`,
    );
  const range = rangeOf(values, stats);
  let shown = dims;
  if (dims.length > 3) {
    shown = dims.slice(-3);
    notes.push(
      `Rank ${dims.length}: showing the first ${fmtShape(shown)} slice of ${fmtShape(dims)}.`,
    );
  }
  const wordsFor = (n) => (tokens && tokens.length === n ? tokens : null);

  if (shown.length === 0) {
    return { kind: "scalar", notes, draw: async (div) => (div.textContent = fmtNum(values[0])) };
  }
  if (shown.length === 1) {
    const n = shown[0];
    if (n <= MAX_BARS) {
      const names = labels && labels.length === n ? labels : wordsFor(n);
      return {
        kind: "bars",
        notes,
        draw: (div) =>
          bars(div, Array.from(values.subarray(0, n)), {
            labels: names,
            highlight: Boolean(labels && labels.length === n),
          }),
      };
    }
    return {
      kind: "strip",
      notes,
      draw: (div) =>
        heatmap(div, [Array.from(values.subarray(0, n))], {
          range,
          exact,
          xTitle: `index (${n})`,
          height: 110,
        }),
    };
  }
  if (shown.length === 2) {
    const [rows, cols] = shown;
    const words = wordsFor(rows);
    const classes = labels && labels.length === cols && cols > 1 ? labels : null;
    const { axes } = squeezed(tensor.shape);
    const rank = tensor.shape.length;
    const spatial =
      rank >= 3 && axes[axes.length - 1] === rank - 1 && axes[axes.length - 2] === rank - 2;
    return {
      kind: "heatmap",
      notes,
      draw: (div) =>
        heatmap(div, matrix(values, 0, rows, cols), {
          range,
          exact,
          rowLabels: words,
          square: spatial && !words,
          yTitle: words ? "word" : spatial ? `row (${rows})` : `position (${rows})`,
          colLabels: classes,
          xTitle: classes ? "class" : spatial ? `column (${cols})` : `feature (${cols})`,
        }),
    };
  }
  const [c, h, w] = shown;
  const count = Math.min(c, MAX_MAPS);
  if (c > count)
    notes.push(`Showing the first ${count} of ${c} ${mapName === "head" ? "heads" : "channels"}.`);
  const words = wordsFor(h);
  const attention = mapName === "head";
  const titles = Array.from({ length: count }, (_, i) => `${mapName} ${i}`);
  return {
    kind: "grid",
    notes,
    draw: (div) => {
      const maps = titles.map((title, i) => ({ z: matrix(values, i * h * w, h, w), title }));
      return heatmapGrid(div, maps, { range, rowLabels: words, attention, exact });
    },
    paint:
      words || attention
        ? null
        : (div, width) => paintGrid(div, tensor, { count, h, w, range, titles, width }),
  };
}
