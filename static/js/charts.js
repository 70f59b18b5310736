/**
 * Plotly figures built in the browser from decoded tensors: a grid of per-channel heatmaps
 * (one figure, one subplot per channel, one shared colour axis), a single heatmap, and bars.
 * Colour scales are readable by colour-blind users: viridis for values of one sign,
 * ColorBrewer RdBu (blue below zero, red above, white at zero) for signed values.
 */

// Plotly's own "Viridis" stops, written out so that map_canvas.js paints the same colours
export const VIRIDIS = [
  [0, "#440154"],
  [0.06274509803921569, "#48186a"],
  [0.12549019607843137, "#472d7b"],
  [0.18823529411764706, "#424086"],
  [0.25098039215686274, "#3b528b"],
  [0.3137254901960784, "#33638d"],
  [0.3764705882352941, "#2c728e"],
  [0.4392156862745098, "#26828e"],
  [0.5019607843137255, "#21918c"],
  [0.5647058823529412, "#1fa088"],
  [0.6274509803921569, "#28ae80"],
  [0.6901960784313725, "#3fbc73"],
  [0.7529411764705882, "#5ec962"],
  [0.8156862745098039, "#84d44b"],
  [0.8784313725490196, "#addc30"],
  [0.9411764705882353, "#d8e219"],
  [1, "#fde725"],
];
const RDBU = [
  [0, "#2166ac"],
  [0.1, "#4393c3"],
  [0.25, "#92c5de"],
  [0.4, "#d1e5f0"],
  [0.5, "#f7f7f7"],
  [0.6, "#fddbc7"],
  [0.75, "#f4a582"],
  [0.9, "#d6604d"],
  [1, "#b2182b"],
];
export const BAR = "#3b6ea5";
export const BAR_TOP = "#d95f02";

const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
};

let ready = null;

/**
 * Plotly, once its script has run. The page preloads the file; the first call adds the
 * <script> (it then runs from the preload), later calls share the same promise.
 */
export function plotlyReady() {
  if (window.Plotly) {
    // it ran before this module did: note when we first saw it (for bench/bench_ui.py)
    if (!performance.getEntriesByName("pg:plotly-ready").length)
      performance.mark("pg:plotly-ready");
    return Promise.resolve(window.Plotly);
  }
  if (!ready) {
    ready = new Promise((resolve, reject) => {
      let script = document.getElementById("plotly-script");
      if (!script) {
        script = document.createElement("script");
        script.id = "plotly-script";
        script.src = "/static/vendor/plotly/plotly-cartesian.min.js";
        document.head.append(script);
      }
      script.addEventListener("load", () => {
        if (!performance.getEntriesByName("pg:plotly-ready").length)
          performance.mark("pg:plotly-ready");
        resolve(window.Plotly);
      });
      script.addEventListener("error", () => reject(new Error("Plotly could not be loaded.")));
    });
  }
  return ready;
}

/**
 * Draw a tiny grid off screen once Plotly has loaded, while the page waits for the server:
 * Plotly's first figure pays for its own set-up (about as long as ten more), and this one
 * pays it before anyone is looking. Skipped when a real figure is drawn or waiting.
 */
export async function warmUp() {
  const Plotly = await plotlyReady();
  // a figure waits (not drawn, or only painted: map_canvas.js)
  if (document.querySelector(".js-plotly-plot, .fig:not([data-drawn]), .fig.painted")) return;
  const div = document.createElement("div");
  div.className = "plotly-warmup";
  div.setAttribute("aria-hidden", "true");
  document.body.append(div);
  await heatmapGrid(
    div,
    [
      {
        z: [
          [0, 1],
          [1, 0],
        ],
        title: "",
      },
      {
        z: [
          [1, 0],
          [0, 1],
        ],
        title: "",
      },
    ],
    { range: [-1, 1] },
  );
  Plotly.purge(div);
  div.remove();
}

/** Escape text for Plotly, which reads a little HTML (<b>, <a>) in its strings. */
export function plain(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** A colour axis for values in [lo, hi]: diverging around 0 when they change sign. */
export function colorAxis(lo, hi, { colorbar = true } = {}) {
  const axis = { showscale: colorbar, colorbar: { thickness: 10, len: 0.9, outlinewidth: 0 } };
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { ...axis, colorscale: VIRIDIS };
  if (lo < 0 && hi > 0) {
    const m = Math.max(-lo, hi);
    return { ...axis, colorscale: RDBU, cmin: -m, cmax: m, cmid: 0 };
  }
  return { ...axis, colorscale: VIRIDIS, cmin: lo, cmax: hi === lo ? lo + 1e-6 : hi };
}

function bareAxis(extra = {}) {
  return {
    showgrid: false,
    zeroline: false,
    showticklabels: false,
    ticks: "",
    fixedrange: false,
    ...extra,
  };
}

/** How many columns for n maps in a panel `width` pixels wide. */
export function gridColumns(n, width) {
  const fit = Math.max(1, Math.floor(width / 90));
  if (n <= fit && n <= 8) return n;
  return Math.min(fit, n <= 16 ? 8 : n <= 36 ? 8 : 10);
}

/**
 * The values printed in the cells when they fit (a 6×6 pooling input, 2×3 weights): cells
 * at least 34×20 px and at most 12×12 of them. Plotly picks a text colour against each cell.
 */
export function cellText(rows, cols, cellW, cellH) {
  if (rows > 12 || cols > 12 || cellW < 34 || cellH < 20) return {};
  return { texttemplate: "%{z:.3g}", textfont: { size: cellW < 46 ? 9 : 11 } };
}

/** The value in a hover label: z, or (values drawn from u8) a word that it is coming. */
function hoverValue(exact) {
  return exact ? "%{z:.4g}" : "exact value: loading…";
}

/**
 * Where heatmapGrid puts things, in a figure `width` pixels wide: its height and margins,
 * and each map's subplot as paper fractions (x: [x0, x1], y: [y0, y1], y up, the title
 * above y1). map_canvas.js paints at the same places, so Plotly's figure lands on its canvas.
 */
export function gridGeometry(n, mapRows, mapCols, width, opts = {}) {
  const { rowsPx = null, rowLabels = null, attention = false } = opts;
  const cols = rowLabels ? Math.min(n, width > 700 ? 3 : 2) : gridColumns(n, width - 60);
  const gridRows = Math.ceil(n / cols);
  const gap = 0.02;
  const cellW = (1 - gap * (cols - 1)) / cols;
  const plotW = (width - 70) * cellW; // pixels per map
  let cellPx = rowsPx ?? Math.max(36, Math.min(plotW * (mapRows / mapCols), 220));
  if (rowLabels) cellPx = Math.max(cellPx, mapRows * 13);
  // attention: each map's axes say what they are (query rows attend to key columns), with
  // the positions (or the words) along them
  const longest = Math.max(0, ...(rowLabels || []).map((w) => String(w).length));
  const axisPx = attention ? 26 + (rowLabels ? Math.min(longest, 12) * 5.5 : 0) : 0;
  const titlePx = 16 + axisPx;
  const height = gridRows * (cellPx + titlePx) + 16;
  // r: room for the colour bar and its labels ("−0.005", "−500µ")
  const margin = { l: rowLabels ? 70 : attention ? 48 : 4, r: 72, t: 16, b: 4 };
  const rowFrac = 1 / gridRows;
  const cells = [];
  for (let i = 0; i < n; i += 1) {
    const r = Math.floor(i / cols);
    const c = i % cols;
    const x0 = c * (cellW + gap);
    const y1 = 1 - r * rowFrac;
    const y0 = y1 - rowFrac * (cellPx / (cellPx + titlePx));
    cells.push({ row: r, col: c, x: [x0, x0 + cellW], y: [y0, y1 - rowFrac * 0.02], top: y1 });
  }
  return { cols, height, margin, cells, cellPx, plotW };
}

/**
 * One figure, one heatmap subplot per map. maps: [{z, title, hover}], all the same size
 * (rows × cols); range: [lo, hi] for the shared colour axis; exact: false when z are u8
 * levels (no value printed in cells or hover labels).
 */
export async function heatmapGrid(
  div,
  maps,
  { range, rowsPx = null, rowLabels = null, attention = false, exact = true } = {},
) {
  const Plotly = await plotlyReady();
  const width = Math.max(div.clientWidth || 600, 240);
  const n = maps.length;
  const mapRows = maps[0].z.length;
  const mapCols = maps[0].z[0].length;
  const geo = gridGeometry(n, mapRows, mapCols, width, { rowsPx, rowLabels, attention });
  const { cellPx, plotW } = geo;
  const layout = {
    height: geo.height,
    // a plain grid keeps its margins (the colour bar fits in r): map_canvas.js painted there
    margin: { ...geo.margin, autoexpand: Boolean(rowLabels || attention) },
    coloraxis: colorAxis(range[0], range[1]),
    annotations: [],
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
  };
  // with words on both axes (attention), the hover names the pair: "movie → good"
  const pairs =
    rowLabels && rowLabels.length === mapRows && mapRows === mapCols
      ? rowLabels.map((a) => rowLabels.map((b) => `${plain(a)} → ${plain(b)}`))
      : null;
  const traces = maps.map((m, i) => {
    const { col: c, x, y, top } = geo.cells[i];
    const k = i === 0 ? "" : String(i + 1);
    const xExtra = { domain: x, anchor: `y${k}` };
    const yExtra = { domain: y, anchor: `x${k}`, autorange: "reversed" };
    if (attention) {
      const small = { size: 9 };
      Object.assign(xExtra, { showticklabels: true, tickfont: small });
      if (mapCols <= 12) Object.assign(xExtra, { tick0: 0, dtick: 1 });
      if (rowLabels && pairs) {
        // the words along both axes (the caption says rows attend to columns)
        Object.assign(xExtra, { tickvals: rowLabels.map((_, j) => j), ticktext: rowLabels.map(plain) });
      } else xExtra.title = { text: "key position", font: small, standoff: 2 };
      if (c === 0 && !rowLabels) {
        Object.assign(yExtra, { showticklabels: true, tickfont: small, title: { text: "query position", font: small, standoff: 2 } });
        if (mapRows <= 12) Object.assign(yExtra, { tick0: 0, dtick: 1 });
      }
    }
    layout[`xaxis${k}`] = bareAxis(xExtra);
    if (rowLabels && c === 0) {
      Object.assign(yExtra, { showticklabels: true, tickvals: rowLabels.map((_, j) => j) });
      yExtra.ticktext = rowLabels.map(plain);
    }
    layout[`yaxis${k}`] = bareAxis(yExtra);
    layout.annotations.push({
      text: plain(m.title),
      x: (x[0] + x[1]) / 2,
      y: top,
      xref: "paper",
      yref: "paper",
      xanchor: "center", // "auto" would pin the first column's left and the last's right
      yanchor: "bottom",
      showarrow: false,
      font: { size: 11 },
    });
    const trace = {
      type: "heatmap",
      z: m.z,
      xaxis: `x${k}`,
      yaxis: `y${k}`,
      coloraxis: "coloraxis",
      hovertemplate: `${plain(m.title)}<br>row %{y}, col %{x}<br>${hoverValue(exact)}<extra></extra>`,
      ...(exact ? cellText(mapRows, mapCols, plotW / mapCols, cellPx / mapRows) : {}),
    };
    if (pairs) {
      trace.customdata = pairs;
      trace.hovertemplate = `${plain(m.title)}<br>%{customdata}<br>${hoverValue(exact)}<extra></extra>`;
    }
    return trace;
  });
  return Plotly.newPlot(div, traces, layout, CONFIG);
}

/** One heatmap with axis titles; rowLabels/colLabels replace the indices (e.g. words). */
export async function heatmap(div, z, opts = {}) {
  const Plotly = await plotlyReady();
  const { range, xTitle = "", yTitle = "", rowLabels = null, colLabels = null } = opts;
  const exact = opts.exact ?? true; // false: z are u8 levels, no value printed
  const rows = z.length;
  const auto = opts.square
    ? Math.max(160, Math.min(60 + rows * 8, 340))
    : Math.max(140, Math.min(40 + rows * 18, 420));
  const height = opts.height ?? auto;
  const xaxis = { title: { text: plain(xTitle), standoff: 4 }, showgrid: false, zeroline: false };
  const yaxis = {
    title: { text: plain(yTitle), standoff: 4 },
    autorange: "reversed",
    showgrid: false,
    zeroline: false,
  };
  // cells sit at whole indices: on a short axis Plotly's automatic ticks fall between cells
  // ("0.5"), so a tick per cell there; past a dozen cells its steps are whole already
  const step = (n) => (n <= 12 ? { tick0: 0, dtick: 1 } : {});
  Object.assign(xaxis, step(z[0]?.length ?? 1));
  Object.assign(yaxis, step(rows));
  if (rowLabels)
    Object.assign(yaxis, { tickvals: rowLabels.map((_, i) => i), ticktext: rowLabels.map(plain) });
  if (colLabels)
    Object.assign(xaxis, { tickvals: colLabels.map((_, i) => i), ticktext: colLabels.map(plain) });
  const trace = {
    type: "heatmap",
    z,
    coloraxis: "coloraxis",
    hovertemplate: `${plain(yTitle || "row")} %{y}, ${plain(xTitle || "col")} %{x}<br>${hoverValue(exact)}<extra></extra>`,
  };
  const cols = z[0]?.length ?? 1;
  const plotW = (div.clientWidth || 600) - (rowLabels ? 80 : 50) - 80; // margins, colour bar
  const side = Math.min(plotW / cols, opts.square ? (height - 48) / rows : Infinity);
  if (exact) Object.assign(trace, cellText(rows, cols, side, (height - 48) / rows));
  if (opts.customdata) {
    trace.customdata = opts.customdata; // plain strings we made: no user text
    trace.hovertemplate = `%{customdata}<br>${hoverValue(exact)}<extra></extra>`;
  }
  if (opts.square) {
    // square cells: both axes shrink their domain, neither widens its range past the cells
    Object.assign(yaxis, { scaleanchor: "x", constrain: "domain" });
    xaxis.constrain = "domain";
  }
  if (z.length === 1) Object.assign(yaxis, { showticklabels: false, ticks: "" }); // a strip
  if (opts.hideTicks) {
    Object.assign(xaxis, { showticklabels: false, ticks: "" });
    Object.assign(yaxis, { showticklabels: false, ticks: "" });
  }
  const layout = {
    height,
    margin: { l: rowLabels ? 80 : 50, r: 10, t: 8, b: 40 },
    coloraxis: colorAxis(range[0], range[1]),
    xaxis,
    yaxis,
    paper_bgcolor: "rgba(0,0,0,0)",
  };
  return Plotly.newPlot(div, [trace], layout, CONFIG);
}

/** Bars of values; labels name them (class names), the largest is highlighted. */
export async function bars(div, values, { labels = null, highlight = true, yTitle = "" } = {}) {
  const Plotly = await plotlyReady();
  const x = labels ? labels.map(plain) : values.map((_, i) => i);
  let top = -1;
  if (highlight) values.forEach((v, i) => (top = top < 0 || v > values[top] ? i : top));
  const trace = {
    type: "bar",
    x,
    y: values,
    marker: { color: values.map((_, i) => (i === top ? BAR_TOP : BAR)) },
    hovertemplate: "%{x}: %{y:.4g}<extra></extra>",
  };
  const layout = {
    height: 200,
    margin: { l: 50, r: 10, t: 8, b: labels ? 50 : 30 },
    xaxis: { type: "category", tickangle: labels && labels.length > 12 ? -45 : 0 },
    yaxis: { title: { text: plain(yTitle) }, zeroline: true },
    bargap: 0.15,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
  };
  if (values.length > 60) layout.xaxis = { type: "linear" };
  return Plotly.newPlot(div, [trace], layout, CONFIG);
}

/** Free a figure's listeners and WebGL/SVG before its node goes away. */
export function purge(div) {
  if (window.Plotly && div.classList.contains("js-plotly-plot")) window.Plotly.purge(div);
}
