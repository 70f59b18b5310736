/**
 * Figures of the effects lab: line charts, grouped bars and heatmaps (through charts.js),
 * each drawn with Plotly.react so the figure div keeps its listeners. Every draw bumps the
 * div's data-drawn counter, which tests (and people) can wait on. Colours are the
 * colour-blind-safe Okabe–Ito set, as the bars in charts.js.
 */

import { plain, plotlyReady } from "../charts.js";
import { decodePayload } from "../f16.js";

export const COLORS = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];
const CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };

/** Mark a figure drawn once more (data-drawn = 1, 2, …). */
export function drawn(div) {
  div.dataset.drawn = String(Number(div.dataset.drawn || 0) + 1);
}

/** A payload's values as a flat array of numbers. */
export function flat(payload) {
  return Array.from(decodePayload(payload).values);
}

/** A payload as rows × cols (the last dimension as columns). */
export function rows(payload) {
  const values = flat(payload);
  const shape = payload.shape.length ? payload.shape : [1];
  const cols = shape[shape.length - 1];
  const out = [];
  for (let i = 0; i < values.length; i += cols) out.push(values.slice(i, i + cols));
  return out;
}

/**
 * opts: height, title, xTitle, yTitle, shapes, legend (shown: true/false), integerX (x is
 * a count: whole-number ticks), yRange ([lo, hi], e.g. [0, 1] for a fraction).
 */
function baseLayout(opts) {
  const top = (opts.title ? 26 : 8) + (opts.legend ? 22 : 0); // the legend sits above
  const layout = {
    height: (opts.height ?? 260) + (opts.legend ? 22 : 0),
    margin: { l: 50, r: 10, t: top, b: 40 },
    title: opts.title ? { text: plain(opts.title), font: { size: 13 } } : undefined,
    xaxis: { title: { text: plain(opts.xTitle ?? "") }, zeroline: true },
    yaxis: { title: { text: plain(opts.yTitle ?? "") }, zeroline: true },
    showlegend: Boolean(opts.legend),
    // above the plot, clear of the x-axis title below it
    legend: { orientation: "h", x: 0, xanchor: "left", y: 1, yanchor: "bottom" },
    shapes: opts.shapes ?? [],
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    barmode: "group",
  };
  if (opts.integerX) Object.assign(layout.xaxis, { tick0: 0, dtick: 1, tickformat: "d" });
  if (opts.integerX && opts.xMax > 10) layout.xaxis.dtick = Math.ceil(opts.xMax / 10);
  if (opts.yRange) Object.assign(layout.yaxis, { range: opts.yRange, autorange: false });
  return layout;
}

/** Lines: series [{x, y, name}]; dashes alternate with colours for readers without colour. */
export async function lines(div, series, opts = {}) {
  const Plotly = await plotlyReady();
  const dashes = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];
  const traces = series.map((s, i) => ({
    type: "scatter",
    mode: s.mode ?? "lines",
    x: s.x,
    y: s.y,
    name: plain(s.name),
    line: { color: COLORS[i % COLORS.length], dash: dashes[i % dashes.length], width: 2 },
    hovertemplate: `${plain(s.name)}<br>x %{x:.3g}: %{y:.4g}<extra></extra>`,
  }));
  await Plotly.react(div, traces, baseLayout({ legend: series.length > 1, ...opts }), CONFIG);
  drawn(div);
}

/** Grouped bars: series [{y, name, x?}]. */
export async function groupedBars(div, series, opts = {}) {
  const Plotly = await plotlyReady();
  const traces = series.map((s, i) => ({
    type: "bar",
    x: s.x ?? s.y.map((_, j) => String(j)),
    y: s.y,
    name: plain(s.name),
    marker: { color: s.color ?? COLORS[i % COLORS.length] },
    hovertemplate: `${plain(s.name)} %{x}: %{y:.4g}<extra></extra>`,
  }));
  const layout = baseLayout({ height: 220, legend: series.length > 1, ...opts });
  layout.xaxis.type = "category";
  await Plotly.react(div, traces, layout, CONFIG);
  drawn(div);
}

/** A horizontal dashed line at y across the whole x range (a reference such as p). */
export function hline(y) {
  return {
    type: "line",
    xref: "paper",
    x0: 0,
    x1: 1,
    y0: y,
    y1: y,
    line: { color: "#1b1f24", dash: "dash", width: 2 },
  };
}
