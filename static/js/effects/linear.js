/**
 * Linear by hand: a seeded nn.Linear(in, out) on a random x; W, b, torch's y, and every
 * output worked out as x·w products, their sum and the bias, equal to y.
 */

import { api } from "../api.js";
import { el, fmtNum, replace } from "../dom.js";
import { controlForm } from "./form.js";
import { rows } from "./plot.js";

export const SCHEMA = [
  { key: "in", label: "in_features", kind: "number", min: 1, max: 8, value: 3 },
  { key: "out", label: "out_features", kind: "number", min: 1, max: 8, value: 2 },
  { key: "bias", label: "bias", kind: "checkbox", value: true },
  { key: "seed", label: "Seed", kind: "number", min: 0, max: 1e9, value: 0 },
];

/** A factor of a product: negative ones in brackets, with a true minus sign: (−0.004323). */
function factor(v) {
  const text = fmtNum(v);
  return v < 0 ? `(−${text.slice(1)})` : text;
}

function matrixTable(caption, z, id) {
  return el(
    "table",
    { class: "data-table fx-matrix", id },
    el("caption", { text: caption }),
    el("tbody", {}, z.map((row) => el("tr", {}, row.map((v) => el("td", { class: "num", text: fmtNum(v) }))))),
  );
}

export function createLinear(panel, { values, onState, run }) {
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  const call = el("p", { class: "fx-call", id: "lin-call" });
  const status = el("p", { class: "fx-status", role: "status", id: "lin-status" });
  const mats = el("div", { class: "fx-mats", id: "lin-mats" });
  const steps = el("div", { class: "table-wrap", id: "lin-steps" });
  replace(panel, el("div", { class: "fx-bar" }, form.root), call, status, mats, steps);

  async function update(v) {
    onState(v);
    const body = { in_features: v.in ?? 3, out_features: v.out ?? 2, bias: v.bias, seed: v.seed ?? 0 };
    body.x = { kind: "random", distribution: "uniform", shape: [1, body.in_features], seed: 0 };
    const r = await run(status, () => api.effect("linear", body));
    if (!r) return;
    call.textContent = `${r.torch_call}: ${r.formula}; max |by hand − torch| = ${fmtNum(r.max_abs_diff)}`;
    replace(
      mats,
      matrixTable("W (out × in)", rows(r.weight), "lin-w"),
      r.bias ? matrixTable("b", [rows(r.bias)[0]], "lin-b") : null,
      matrixTable("x", rows(r.x), "lin-x"),
      matrixTable("y = torch's F.linear(x, W, b)", rows(r.y), "lin-y"),
    );
    const head = ["out", "x·w products", "sum", "+ bias", "= value", "torch", "|diff|"];
    const table = el(
      "table",
      { class: "data-table" },
      el("caption", { text: "Step by step" }),
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", text: h })))),
      el(
        "tbody",
        {},
        r.steps.map((s) =>
          el(
            "tr",
            {},
            el("th", { scope: "row", text: `y[${s.row}, ${s.out}]` }),
            el("td", { text: s.x.map((x, i) => `${factor(x)}·${factor(s.w[i])}`).join(" + ") }),
            el("td", { class: "num", text: fmtNum(s.sum) }),
            el("td", { class: "num", text: fmtNum(s.bias) }),
            el("td", { class: "num", text: fmtNum(s.value) }),
            el("td", { class: "num", text: fmtNum(s.torch) }),
            el("td", { class: "num", text: fmtNum(s.abs_diff) }),
          ),
        ),
      ),
    );
    replace(steps, table);
  }

  return { refresh: () => update(form.values()), values: () => form.values() };
}
