/**
 * Activations: f(x) and f′(x) (by autograd, on the server) of the chosen catalog
 * activations with their parameters; softmax of a vector at a temperature; and the linear
 * stack: N Linear layers are one matrix, with an activation between them they are not.
 */

import { api } from "../api.js";
import { el, fmtNum, replace, uid } from "../dom.js";
import { controlForm } from "./form.js";
import { flat, groupedBars, lines } from "./plot.js";

const DEFAULT_FNS = "ReLU,LeakyReLU,Tanh,Hardtanh,Sigmoid";
export const SCHEMA = [
  { key: "xmin", label: "x from", kind: "number", step: "any", value: -5 },
  { key: "xmax", label: "x to", kind: "number", step: "any", value: 5 },
  { key: "scores", label: "Softmax scores (comma-separated)", kind: "text", value: "1, 2, 3" },
  { key: "temp", label: "Temperature", kind: "range", min: 0.1, max: 5, step: 0.1, value: 1 },
  { key: "sizes", label: "Linear stack sizes", kind: "text", value: "3, 4, 4, 2" },
  { key: "stack", label: "Activation between", kind: "select", options: ["ReLU", "Tanh", "Sigmoid", "GELU"], value: "ReLU" },
];

const numbers = (text) =>
  String(text)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);

export function createActivations(panel, { values, onState, run, catalog }) {
  const acts = catalog.layers.filter((e) => e.category === "activation" && !["Softmax", "LogSoftmax", "Softmin"].includes(e.type));
  const chosen = new Set(String(values.fns ?? DEFAULT_FNS).split(",").filter(Boolean));
  const boxes = [];
  const argInputs = [];
  const pickers = el("fieldset", { class: "fx-picks", id: "act-types" }, el("legend", { text: "Activations" }));
  const params = el("fieldset", { class: "fx-picks", id: "act-params" }, el("legend", { text: "Parameters" }));
  for (const entry of acts) {
    const id = uid("act");
    const box = el("input", { type: "checkbox", id, value: entry.type, checked: chosen.has(entry.type) });
    box.addEventListener("change", () => update(form.values()));
    boxes.push(box);
    pickers.append(el("label", { for: id, class: "fx-pick" }, box, entry.type));
    for (const arg of entry.args.filter((a) => a.kind === "float")) {
      const key = `${entry.type}.${arg.name}`;
      const aid = uid("arg");
      const saved = values[`a.${key}`];
      const input = el("input", { type: "number", step: "any", id: aid, value: saved ?? arg.default ?? "" });
      input.dataset.type = entry.type;
      input.dataset.arg = arg.name;
      input.addEventListener("input", () => update(form.values()));
      argInputs.push(input);
      params.append(el("label", { for: aid, class: "field" }, el("span", { class: "field-label", text: `${entry.type} ${arg.name}` }), input));
    }
  }
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  const status = el("p", { class: "fx-status", role: "status", id: "act-status" });
  const figF = el("div", { class: "fig", id: "act-f" });
  const figD = el("div", { class: "fig", id: "act-df" });
  const figSoft = el("div", { class: "fig", id: "act-softmax" });
  const softNote = el("p", { class: "fx-call", id: "act-soft-note" });
  const stackNote = el("ul", { class: "fx-notes", id: "act-stack" });
  replace(
    panel,
    el("div", { class: "fx-bar" }, pickers, params, form.root),
    status,
    el(
      "div",
      { class: "fx-grid2" },
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "f(x)" }), figF),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "f′(x) by autograd" }), figD),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "softmax(scores / T)" }), figSoft, softNote),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "A stack of Linear layers" }), stackNote),
    ),
  );

  function full(v) {
    const fns = boxes.filter((b) => b.checked).map((b) => b.value);
    const out = { ...v, fns: fns.join(",") };
    for (const input of argInputs) {
      if (fns.includes(input.dataset.type) && input.value !== "") out[`a.${input.dataset.type}.${input.dataset.arg}`] = input.value;
    }
    return out;
  }

  async function update(v) {
    const state = full(v);
    onState(state);
    const functions = state.fns.split(",").filter(Boolean).map((type) => {
      const args = {};
      for (const input of argInputs) {
        if (input.dataset.type === type && input.value !== "") args[input.dataset.arg] = Number(input.value);
      }
      return { type, args };
    });
    if (!functions.length) {
      status.textContent = "Choose at least one activation.";
      return;
    }
    const r = await run(status, () =>
      Promise.all([
        api.effect("activations", { functions, x_min: v.xmin ?? -5, x_max: v.xmax ?? 5, points: 201 }),
        api.effect("activations/softmax", { scores: numbers(v.scores), temperature: v.temp ?? 1 }),
        api.effect("activations/linear-stack", { sizes: numbers(v.sizes), activation: v.stack }),
      ]),
    );
    if (!r) return;
    const [curves, soft, stack] = r;
    const series = (key) => curves.curves.map((c) => ({ name: c.torch_call, x: flat(c.x), y: flat(c[key]) }));
    await lines(figF, series("y"), { xTitle: "x", yTitle: "f(x)" });
    await lines(figD, series("dy"), { xTitle: "x", yTitle: "f′(x)" });
    const labels = flat(soft.x).map((s, i) => `${i}: ${fmtNum(s)}`);
    await groupedBars(figSoft, [{ name: "softmax", x: labels, y: flat(soft.softmax) }], { yTitle: "probability" });
    softNote.textContent = `T = ${fmtNum(soft.temperature)}: sum ${fmtNum(soft.sum)}, largest ${fmtNum(soft.max_probability)} (index ${soft.argmax}), entropy ${fmtNum(soft.entropy)} nats.`;
    replace(
      stackNote,
      el("li", { text: `Sizes ${stack.sizes.join(" → ")}: ${stack.layers.length} Linear layers compose into one ${stack.composed.weight.shape.join("×")} matrix.` }),
      el("li", { text: `Without activations: max |stack − one matrix| = ${fmtNum(stack.linear.max_abs_diff)}, affine-fit residual ${fmtNum(stack.linear.fit.relative_residual)} (an exact fit).` }),
      el("li", { text: `With ${stack.activation} between: max |stack − one matrix| = ${fmtNum(stack.nonlinear.max_abs_diff)}, best affine-fit residual ${fmtNum(stack.nonlinear.fit.relative_residual)}: no single matrix matches.` }),
    );
  }

  return { refresh: () => update(form.values()), values: () => full(form.values()) };
}
