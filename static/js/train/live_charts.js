/**
 * The live charts of a training: loss (train per step, test per evaluation), accuracy,
 * learning rate, gradient flow (per-layer gradient norm and update/weight ratio, log scale)
 * and the confusion matrix. Points are appended with Plotly.extendTraces, one call per chart
 * per batch of events (the stream hands over one batch per animation frame).
 */

import { plotlyReady, plain } from "../charts.js";
import { el, replace } from "../dom.js";

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));
const CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };
const COLORS = ["#3b6ea5", "#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d"];

function layout(yTitle, extra = {}) {
  return {
    height: 190,
    margin: { l: 52, r: 8, t: 22, b: 30 },
    xaxis: { title: { text: "step", standoff: 2 }, zeroline: false },
    yaxis: { title: { text: plain(yTitle), standoff: 2 }, zeroline: false },
    legend: { orientation: "h", y: 1.18, x: 0, font: { size: 11 } },
    paper_bgcolor: "rgba(0,0,0,0)",
    ...extra,
  };
}

const line = (name, i, mode = "lines") => ({
  x: [],
  y: [],
  name,
  mode,
  type: "scatter",
  line: { color: COLORS[i % COLORS.length], width: 1.5 },
  marker: { size: 6 },
});

export class LiveCharts {
  constructor(root) {
    this.root = root;
    this.divs = {};
    this.layers = null; // grad-flow layer names, fixed by the first grad_flow event
    this.points = 0; // points appended so far (the bench reads it)
  }

  /** Empty figures for a new training. classes: class names, or null for regression. */
  async reset(classes) {
    const Plotly = await plotlyReady();
    for (const div of Object.values(this.divs)) Plotly.purge(div);
    const make = (id, label) =>
      el("div", { class: "train-chart", id: `chart-${id}`, "aria-label": label });
    this.divs = {
      loss: make("loss", "Loss per step"),
      acc: make("acc", "Accuracy"),
      lr: make("lr", "Learning rate"),
      flow: make("flow", "Gradient flow"),
      confusion: make("confusion", "Confusion matrix"),
    };
    this.classes = classes;
    this.layers = null;
    this.points = 0;
    replace(this.root, Object.values(this.divs));
    const { loss, acc, lr, flow, confusion } = this.divs;
    await Plotly.newPlot(loss, [line("train", 0), line("test", 1, "lines+markers")], layout("loss"), CONFIG);
    await Plotly.newPlot(acc, [line("train", 0), line("test", 1, "lines+markers")], layout("accuracy", { yaxis: { range: [0, 1], title: { text: "accuracy" } } }), CONFIG);
    await Plotly.newPlot(lr, [line("learning rate", 2)], layout("learning rate", { yaxis: { type: "log", title: { text: "learning rate" } } }), CONFIG);
    await Plotly.newPlot(flow, [], layout("‖grad‖ (—), ‖Δw‖/‖w‖ (…)", { height: 210, margin: { l: 52, r: 8, t: 44, b: 30 }, legend: { orientation: "h", y: 1.35, x: 0, font: { size: 10 } }, yaxis: { type: "log", title: { text: "gradient flow" } } }), CONFIG);
    acc.hidden = !classes;
    confusion.hidden = !classes;
    this.confusionDrawn = false;
  }

  /** Append a batch of stream events (already parsed). */
  async append(events) {
    const Plotly = await plotlyReady();
    const loss = { x: [[], []], y: [[], []] };
    const acc = { x: [[], []], y: [[], []] };
    const lr = { x: [[]], y: [[]] };
    const flow = [];
    let confusion = null;
    for (const { kind, data } of events) {
      if (kind === "step") {
        loss.x[0].push(data.step);
        loss.y[0].push(data.loss);
        lr.x[0].push(data.step);
        lr.y[0].push(data.lr);
        if (data.accuracy !== undefined) {
          acc.x[0].push(data.step);
          acc.y[0].push(data.accuracy);
        }
        if (data.grad_flow) flow.push([data.step, data.grad_flow]);
      } else if (kind === "eval") {
        loss.x[1].push(data.step);
        loss.y[1].push(data.test_loss);
        if (data.test_accuracy !== undefined) {
          acc.x[1].push(data.step);
          acc.y[1].push(data.test_accuracy);
        }
        if (data.confusion) confusion = data.confusion;
      }
    }
    // one chart per task (a frame apart), so no single task redraws them all
    const { divs } = this;
    if (loss.x[0].length || loss.x[1].length) {
      await Plotly.extendTraces(divs.loss, loss, [0, 1]);
      this.points += loss.x[0].length + loss.x[1].length;
      if (!document.hidden) await nextFrame();
      await Plotly.extendTraces(divs.lr, lr, [0]);
    }
    if (acc.x[0].length || acc.x[1].length) {
      if (!document.hidden) await nextFrame();
      await Plotly.extendTraces(divs.acc, acc, [0, 1]);
    }
    if (flow.length) {
      if (!document.hidden) await nextFrame();
      await this.appendFlow(Plotly, flow);
    }
    if (confusion) this.drawConfusion(Plotly, confusion);
  }

  async appendFlow(Plotly, flow) {
    if (!this.layers) {
      this.layers = Object.keys(flow[0][1]);
      const traces = [];
      this.layers.forEach((name, i) => {
        traces.push({ ...line(`${name}`, i), legendgroup: name });
        const dotted = line(`${name} Δw/w`, i);
        dotted.line.dash = "dot";
        traces.push({ ...dotted, legendgroup: name, showlegend: false });
      });
      await Plotly.addTraces(this.divs.flow, traces);
    }
    const x = [];
    const y = [];
    const idx = [];
    this.layers.forEach((name, i) => {
      for (const [k, key] of [
        [0, "grad_norm"],
        [1, "update_ratio"],
      ]) {
        idx.push(2 * i + k);
        x.push(flow.map(([step]) => step));
        y.push(flow.map(([, f]) => f[name]?.[key] ?? null));
      }
    });
    Plotly.extendTraces(this.divs.flow, { x, y }, idx);
  }

  drawConfusion(Plotly, matrix) {
    const div = this.divs.confusion;
    if (this.confusionDrawn) {
      Plotly.restyle(div, { z: [matrix] }, [0]);
      return;
    }
    this.confusionDrawn = true;
    const names = (this.classes || []).map(plain);
    const ticks = { tickvals: names.map((_, i) => i), ticktext: names, tickfont: { size: 9 } };
    Plotly.newPlot(
      div,
      [{ type: "heatmap", z: matrix, colorscale: "Blues", reversescale: true, showscale: false,
         hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }],
      {
        height: 260,
        margin: { l: 80, r: 8, t: 22, b: 70 },
        title: { text: "test confusion (rows: true)", font: { size: 12 } },
        xaxis: { ...ticks, title: { text: "predicted" } },
        yaxis: { ...ticks, autorange: "reversed" },
        paper_bgcolor: "rgba(0,0,0,0)",
      },
      CONFIG,
    );
  }
}
