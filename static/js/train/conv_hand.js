/**
 * Convolution by hand, as CNN Explainer shows it: for one clicked cell of a conv map, the
 * input patch under the kernel, the kernel, their element-wise products, the sum plus bias,
 * and the value in the map. Every number comes from the server (POST …/conv_by_hand).
 */

import { el, replace } from "../dom.js";
import { trainApi } from "./api.js";

const fmt = (v) => (Math.abs(v) >= 100 || (v !== 0 && Math.abs(v) < 0.001) ? v.toExponential(2) : v.toFixed(3));

function table(title, m, cls) {
  return el(
    "figure",
    { class: `hand-grid ${cls}` },
    el("figcaption", { text: title }),
    el("table", {}, el("tbody", {}, m.map((row) => el("tr", {}, row.map((v) => el("td", { class: "mono", text: fmt(v) })))))),
  );
}

export class ConvByHand {
  constructor(root) {
    this.root = root;
    replace(root, el("p", { class: "muted", text: "Click a cell of a map to compute it by hand." }));
  }

  /** cell: {layer, channel, row, col, inputs, checkpoint?}; shown: the value the map shows. */
  async show(modelId, cell, shown) {
    const body = { layer: cell.layer, channel: cell.channel, row: cell.row, col: cell.col, inputs: cell.inputs };
    if (cell.checkpoint) body.checkpoint = cell.checkpoint;
    const r = await trainApi.convByHand(modelId, body);
    const c0 = r.in_channels.length > 1 ? ` (input channel ${r.in_channels[0]} of ${r.in_channels.length}; the sum covers all)` : "";
    replace(
      this.root,
      el("h4", { text: `${cell.layer}[${r.channel}] at row ${r.row}, col ${r.col}, by hand` }),
      el(
        "div",
        { class: "hand-row" },
        table(`input patch${c0}`, r.patch[0], "hand-patch"),
        el("span", { class: "hand-op", text: "⊙" }),
        table("kernel", r.kernel[0], "hand-kernel"),
        el("span", { class: "hand-op", text: "=" }),
        table("products", r.products[0], "hand-products"),
      ),
      el(
        "p",
        { class: "hand-sum mono" },
        "Σ products = ",
        el("b", { id: "hand-sum", text: String(r.sum) }),
        " ; + bias ",
        el("span", { id: "hand-bias", text: String(r.bias) }),
        " = ",
        el("b", { id: "hand-result", text: String(r.result) }),
      ),
      el(
        "p",
        { class: "hand-sum mono" },
        "value in the map: ",
        el("b", { id: "hand-value", text: String(r.value) }),
        shown !== undefined ? el("span", { class: "muted", id: "hand-shown", text: ` (the map drawn above shows ${shown})` }) : null,
      ),
    );
    this.root.dataset.cell = `${r.channel},${r.row},${r.col}`;
    return r;
  }
}
