/**
 * A grid of heatmaps painted at once on <canvas> elements, before Plotly has started, so a
 * run's maps are on screen as soon as its answer is: the colours Plotly will give them
 * (charts.colorAxis: the same scale and range; Plotly's own interpolation and rounding), at
 * the places its figure will have them (charts.gridGeometry), row 0 at the top, one canvas
 * pixel per value scaled up with hard edges. The painting lies over the figure's box;
 * Plotly's figure (hover values, zoom, colour bar) replaces it when it is drawn (results.js).
 * A u8 payload's codes go through a 256-entry table of colours: one lookup per value.
 */

import { colorAxis, gridGeometry } from "./charts.js";

/** "#rrggbb" -> [r, g, b]. */
function rgb(hex) {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/**
 * The colour Plotly gives a value on a colour axis ({colorscale, cmin, cmax}, as colorAxis
 * writes it): d3's clamped piecewise-linear scale over the stops placed between cmin and
 * cmax, each channel rounded, as Plotly's heatmaps paint. v -> [r, g, b], or null (not a
 * number: Plotly leaves the cell transparent).
 */
export function colourOf(axis) {
  const stops = axis.colorscale;
  const lo = axis.cmin;
  const hi = axis.cmax;
  const domain = stops.map(([t]) => lo + t * (hi - lo));
  const colours = stops.map(([, c]) => rgb(c));
  const last = domain.length - 1;
  return (v) => {
    if (typeof v !== "number" || Number.isNaN(v)) return null;
    let i = 1; // d3.bisectRight(domain, v, 1, last) - 1
    while (i < last && !(v < domain[i])) i += 1;
    i -= 1;
    const a = domain[i];
    const span = domain[i + 1] - a || 1 / (domain[i + 1] - a);
    const t = Math.max(0, Math.min(1, (v - a) / span));
    const [c0, c1] = [colours[i], colours[i + 1]];
    return [0, 1, 2].map((k) => Math.round(c0[k] * (1 - t) + c1[k] * t));
  };
}

/** RGBA bytes of `count` maps of h × w values, from `tensor` (f16.decodePayload's). */
function pixels(tensor, count, h, w, colour) {
  const n = count * h * w;
  const out = new Uint8ClampedArray(n * 4);
  if (tensor.codes) {
    const table = new Uint8ClampedArray(256 * 4); // code -> RGBA, from the code's value
    for (let c = 0; c < 256; c += 1) {
      const rgba = colour(tensor.levels[c]);
      if (rgba) table.set([...rgba, 255], c * 4);
    }
    const words = new Uint32Array(table.buffer);
    const into = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i += 1) into[i] = words[tensor.codes[i]];
    return out;
  }
  for (let i = 0; i < n; i += 1) {
    const rgba = colour(tensor.values[i]);
    if (rgba) out.set([...rgba, 255], i * 4);
  }
  return out;
}

/** A box placed in pixels within the figure. */
function place(node, left, top, width, height) {
  Object.assign(node.style, {
    left: `${left}px`,
    top: `${top}px`,
    width: `${width}px`,
    height: `${height}px`,
  });
}

/**
 * Paint `count` maps (channels) of h × w values of a decoded tensor into `div`, titled
 * titles[i], coloured for `range` ([lo, hi]) as heatmapGrid colours them; `width`: the
 * figure's width in pixels (div.clientWidth, read before anything was painted). Returns
 * the height it reserved. Plotly's figure replaces it: unpaint(div).
 */
export function paintGrid(div, tensor, { count, h, w, range, titles, width }) {
  const figW = Math.max(width || 600, 240); // as heatmapGrid reads it
  const geo = gridGeometry(count, h, w, figW);
  const colour = colourOf(colorAxis(range[0], range[1]));
  const rgba = pixels(tensor, count, h, w, colour);
  const plotW = figW - geo.margin.l - geo.margin.r;
  const plotH = geo.height - geo.margin.t - geo.margin.b;
  const layer = document.createElement("div");
  layer.className = "map-canvas";
  layer.setAttribute("aria-hidden", "true");
  for (let i = 0; i < count; i += 1) {
    const { x, y, top: titleAt } = geo.cells[i];
    const mapW = (x[1] - x[0]) * plotW;
    const canvas = document.createElement("canvas");
    canvas.width = w;
    canvas.height = h;
    const image = new ImageData(rgba.subarray(i * h * w * 4, (i + 1) * h * w * 4), w, h);
    canvas.getContext("2d").putImageData(image, 0, 0); // row 0 on top, as y is reversed
    const left = geo.margin.l + x[0] * plotW;
    const top = geo.margin.t + (1 - y[1]) * plotH;
    place(canvas, left, top, mapW, (y[1] - y[0]) * plotH);
    const title = document.createElement("span");
    title.className = "map-canvas-title";
    title.textContent = titles[i];
    place(title, left, geo.margin.t + (1 - titleAt) * plotH - 16, mapW, 16); // above its map
    layer.append(canvas, title);
  }
  div.style.minHeight = `${geo.height}px`;
  div.classList.add("painted");
  div.append(layer);
  return geo.height;
}

/** Remove a painting (Plotly's figure is drawn in its place). */
export function unpaint(div) {
  const layer = div.querySelector(":scope > .map-canvas");
  if (!layer) return;
  layer.remove();
  div.style.minHeight = "";
  div.classList.remove("painted");
}
