/**
 * A histogram from the API's statistics ({counts, range: [lo, hi]}: equal bins, as
 * torch.histc) drawn as a small SVG: cheaper than a Plotly figure, and there is one next to
 * every activation and parameter. Each bar has a <title> (its bin and count) for the
 * tooltip; a line marks zero when the range spans it; the range's ends are written below.
 */

import { el, fmtNum } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** A figure element holding the histogram, or a note when there is nothing to bin. */
export function histogram(hist, { width = 240, height = 50, label = "Histogram" } = {}) {
  const counts = hist?.counts || [];
  const [lo, hi] = hist?.range || [];
  if (!counts.length || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    return el("p", { class: "hist-empty", text: "No finite values to bin." });
  }
  const max = Math.max(...counts, 1);
  const pad = 2;
  const plotH = height; // the bars fill the SVG; the range is written below it in HTML
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "hist",
    role: "img",
    "aria-label": `${label}: ${counts.length} bins from ${fmtNum(lo)} to ${fmtNum(hi)}`,
    preserveAspectRatio: "none",
  });
  const span = hi - lo || 1;
  const edge = (i) => (i === counts.length ? hi : lo + (i * (hi - lo)) / counts.length);
  const xOf = (v) => pad + ((v - lo) / span) * (width - 2 * pad);
  counts.forEach((c, i) => {
    const a = edge(i);
    const b = edge(i + 1);
    const x = xOf(a);
    const w = Math.max(xOf(b) - x - 0.5, 0.5);
    const h = c ? Math.max((c / max) * plotH, 1) : 0;
    const rect = svg("rect", { x, y: plotH - h, width: w, height: h, class: "hist-bar" });
    rect.append(svg("title", {}, `[${fmtNum(a)}, ${fmtNum(b)}): ${c}`));
    root.append(rect);
  });
  if (lo < 0 && hi > 0) {
    const x0 = xOf(0);
    root.append(svg("line", { x1: x0, x2: x0, y1: 0, y2: plotH, class: "hist-zero" }));
  }
  // HTML, not SVG text: the SVG stretches to its box (preserveAspectRatio none), and its
  // text would stretch with it
  const ticks = el(
    "div",
    { class: "hist-ticks", "aria-hidden": "true" },
    el("span", { text: fmtNum(lo) }),
    el("span", { text: fmtNum(hi) }),
  );
  return el("figure", { class: "hist-figure" }, root, ticks);
}

/** A one-line summary of a stats object: mean, std, min, max, zeros. */
export function statsLine(stats) {
  if (!stats) return el("span");
  // torch's tensor.std() divides by n − 1; these statistics (the API's) divide by n
  const POP = "population standard deviation (divided by n): torch.std(x, correction=0); tensor.std() divides by n − 1";
  const parts = [
    ["mean", stats.mean],
    ["std (pop.)", stats.std, POP],
    ["min", stats.min],
    ["max", stats.max],
  ];
  const dl = el("dl", { class: "stats" });
  for (const [k, v, title] of parts)
    dl.append(el("div", {}, el("dt", { text: k, title }), el("dd", { text: fmtNum(v) })));
  if (stats.zero_fraction !== null && stats.zero_fraction !== undefined) {
    const pct = `${(100 * stats.zero_fraction).toFixed(1)}%`;
    dl.append(el("div", {}, el("dt", { text: "zeros" }), el("dd", { text: pct })));
  }
  if (stats.nan_count)
    dl.append(
      el(
        "div",
        { class: "bad" },
        el("dt", { text: "NaN" }),
        el("dd", { text: String(stats.nan_count) }),
      ),
    );
  if (stats.inf_count)
    dl.append(
      el(
        "div",
        { class: "bad" },
        el("dt", { text: "inf" }),
        el("dd", { text: String(stats.inf_count) }),
      ),
    );
  return dl;
}
