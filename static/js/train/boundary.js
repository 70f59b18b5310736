/**
 * The decision boundary of a 2-D classification set, as TensorFlow Playground draws it: the
 * model's probability of the second class over a grid of the input plane (one run of the
 * whole grid as a batch) under the test points. Redrawn at each checkpoint while it learns;
 * only the heatmap's z changes (Plotly.restyle), the figure stays.
 */

import { plotlyReady } from "../charts.js";
import { decodePayload } from "../f16.js";
import { f32Payload, trainApi } from "./api.js";

const N = 48; // grid cells per side
const CONFIG = { displaylogo: false, responsive: true, displayModeBar: false };

export class Boundary {
  constructor(root) {
    this.root = root;
    this.drawn = false;
    this.busy = null;
    this.queued = null;
  }

  async reset(dataset, params) {
    const Plotly = await plotlyReady();
    if (this.drawn) Plotly.purge(this.root);
    this.drawn = false;
    this.root.hidden = !dataset || dataset.sample_shape.length !== 1 || dataset.sample_shape[0] !== 2 || dataset.task !== "classification";
    if (this.root.hidden) return;
    const pts = await trainApi.points(dataset.name, "test", params);
    let m = 0;
    for (const [a, b] of pts.x) m = Math.max(m, Math.abs(a), Math.abs(b));
    m = Math.ceil(m * 1.1 * 10) / 10 || 1;
    this.axis = Array.from({ length: N }, (_, i) => -m + ((i + 0.5) * 2 * m) / N);
    const colors = ["#d95f02", "#3b6ea5"];
    const traces = [
      { type: "heatmap", x: this.axis, y: this.axis, z: this.axis.map(() => this.axis.map(() => 0.5)), zmin: 0, zmax: 1, colorscale: [[0, "#f6c9a6"], [0.5, "#f7f7f7"], [1, "#a9c6e3"]], showscale: false, hovertemplate: "p(blue) %{z:.2f}<extra></extra>" },
      ...[0, 1].map((c) => ({
        type: "scatter",
        mode: "markers",
        name: dataset.classes[c],
        x: pts.x.filter((_, i) => pts.label[i] === c).map((p) => p[0]),
        y: pts.x.filter((_, i) => pts.label[i] === c).map((p) => p[1]),
        marker: { color: colors[c], size: 6, line: { color: "white", width: 1 } },
        hoverinfo: "skip",
      })),
    ];
    await Plotly.newPlot(
      this.root,
      traces,
      { height: 320, width: 340, margin: { l: 30, r: 10, t: 24, b: 24 }, title: { text: "decision boundary (test points)", font: { size: 12 } }, xaxis: { range: [-m, m], zeroline: false }, yaxis: { range: [-m, m], scaleanchor: "x", zeroline: false }, showlegend: false, paper_bgcolor: "rgba(0,0,0,0)" },
      CONFIG,
    );
    this.drawn = true;
  }

  /** Redraw for the model's current weights, or a checkpoint {training, step}; the latest wins. */
  update(modelId, inputName, checkpoint) {
    if (!this.drawn) return Promise.resolve();
    this.queued = { modelId, inputName, checkpoint };
    if (!this.busy)
      this.busy = this.drain().finally(() => {
        this.busy = null;
      });
    return this.busy;
  }

  async drain() {
    while (this.queued) {
      const { modelId, inputName, checkpoint } = this.queued;
      this.queued = null;
      const grid = new Float32Array(N * N * 2);
      for (let r = 0; r < N; r += 1)
        for (let c = 0; c < N; c += 1) {
          grid[2 * (r * N + c)] = this.axis[c];
          grid[2 * (r * N + c) + 1] = this.axis[r];
        }
      const body = { inputs: { [inputName]: f32Payload(grid, [N * N, 2]) }, capture: "none", encoding: "f32", stats: false };
      if (checkpoint) body.checkpoint = checkpoint;
      const res = await trainApi.run(modelId, body);
      const out = decodePayload(Object.values(res.outputs)[0]).values;
      const z = Array.from({ length: N }, (_, r) =>
        Array.from({ length: N }, (_, c) => {
          const i = r * N + c;
          return 1 / (1 + Math.exp(out[2 * i] - out[2 * i + 1])); // softmax of two logits
        }),
      );
      const Plotly = await plotlyReady();
      await Plotly.restyle(this.root, { z: [z] }, [0]);
      this.root.dataset.step = checkpoint ? String(checkpoint.step) : "now";
    }
  }
}
