/**
 * Weight and gradient histograms over time for one parameter, as a heatmap: x is the step,
 * y the value, colour the count (log scale). Each recorded histogram has its own range, so
 * the columns are re-binned onto one value axis spanning all of them. The figure is made
 * once; a batch with new histograms restyles its x, y and z.
 */

import { plotlyReady, plain } from "../charts.js";
import { el, field, replace } from "../dom.js";

const BINS = 40;
const CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };

export class HistChart {
  constructor(root) {
    this.root = root;
    this.columns = []; // [step, {param: {weights, grads}}]
    this.param = null;
    this.kind = "weights";
    this.select = el("select", { id: "hist-param", onchange: () => this.pick(this.select.value) });
    this.which = el(
      "select",
      { id: "hist-kind", onchange: () => this.pick(this.param, this.which.value) },
      el("option", { value: "weights", text: "weights" }),
      el("option", { value: "grads", text: "gradients" }),
    );
    this.div = el("div", { id: "chart-hist", class: "train-chart", "aria-label": "Histograms over time" });
    this.drawn = false;
  }

  async reset() {
    if (this.drawn) (await plotlyReady()).purge(this.div);
    this.drawn = false;
    this.columns = [];
    this.param = null;
    replace(this.select);
    replace(this.root);
  }

  async append(events) {
    let fresh = false;
    for (const { kind, data } of events) {
      if (kind === "step" && data.histograms) {
        this.columns.push([data.step, data.histograms]);
        fresh = true;
      }
    }
    if (!fresh) return;
    if (!this.param) {
      const names = Object.keys(this.columns[0][1]);
      replace(this.select, names.map((n) => el("option", { value: n, text: n })));
      this.param = names[0];
      replace(
        this.root,
        el("div", { class: "train-row" }, field("Histograms of", this.select, { inline: true }), this.which),
        this.div,
      );
    }
    await this.draw();
  }

  pick(param, kind = this.kind) {
    this.param = param;
    this.kind = kind;
    this.draw().catch(() => {});
  }

  async draw() {
    const Plotly = await plotlyReady();
    const cols = this.columns.map(([step, h]) => [step, h[this.param]?.[this.kind]]).filter(([, h]) => h);
    if (!cols.length) return;
    let lo = Infinity;
    let hi = -Infinity;
    for (const [, h] of cols) {
      lo = Math.min(lo, h.min);
      hi = Math.max(hi, h.max);
    }
    if (hi <= lo) hi = lo + 1e-12;
    const width = (hi - lo) / BINS;
    const y = Array.from({ length: BINS }, (_, i) => lo + (i + 0.5) * width);
    const z = y.map(() => new Array(cols.length).fill(0));
    cols.forEach(([, h], c) => {
      const w = (h.max - h.min) / h.counts.length;
      h.counts.forEach((count, i) => {
        const centre = h.min + (i + 0.5) * w;
        const b = Math.min(BINS - 1, Math.max(0, Math.floor((centre - lo) / width)));
        z[b][c] += count;
      });
    });
    const logz = z.map((row) => row.map((v) => Math.log10(1 + v)));
    const x = cols.map(([step]) => step);
    if (this.drawn) {
      await Plotly.restyle(this.div, { x: [x], y: [y], z: [logz] }, [0]);
      return;
    }
    this.drawn = true;
    await Plotly.newPlot(
      this.div,
      [{ type: "heatmap", x, y, z: logz, colorscale: "Viridis", showscale: false, hovertemplate: "step %{x}<br>value %{y:.3g}<br>log10(1 + count) %{z:.2f}<extra></extra>" }],
      {
        height: 210,
        margin: { l: 52, r: 8, t: 8, b: 30 },
        xaxis: { title: { text: "step", standoff: 2 } },
        yaxis: { title: { text: plain("value"), standoff: 2 } },
        paper_bgcolor: "rgba(0,0,0,0)",
      },
      CONFIG,
    );
  }
}
