/**
 * Losses: a loss of predictions against targets, both small editable JSON arrays filled
 * from the route's example for the chosen loss, with the loss's own options (beta, delta,
 * label smoothing, class weights, pos_weight, log_target; only the chosen loss's are
 * editable). The value, per-element values, the gradient with respect to the predictions,
 * and the loss as one prediction varies.
 */

import { api } from "../api.js";
import { el, fmtNum, replace } from "../dom.js";
import { controlForm } from "./form.js";
import { flat, groupedBars, lines } from "./plot.js";

export const SCHEMA = [
  // options: [] are filled from GET /api/effects (the request schema's choices) by main.js
  { key: "loss", label: "Loss", kind: "select", options: [], value: "CrossEntropyLoss" },
  { key: "reduction", label: "Reduction", kind: "select", options: [], value: "mean" },
  { key: "preds", label: "Predictions (JSON)", kind: "textarea", value: "" },
  { key: "targets", label: "Targets (JSON)", kind: "textarea", value: "" },
  { key: "beta", label: "beta (SmoothL1)", kind: "number", min: 0.001, max: 1e6, step: "any", value: 1 },
  { key: "delta", label: "delta (Huber)", kind: "number", min: 0.001, max: 1e6, step: "any", value: 1 },
  { key: "smoothing", label: "label_smoothing (CE)", kind: "number", min: 0, max: 1, step: 0.05, value: 0 },
  { key: "weight", label: "Class weights (CE, NLL)", kind: "text", value: "", hint: "JSON, e.g. [1, 2, 0.5]" },
  { key: "pos_weight", label: "pos_weight (BCEWithLogits)", kind: "text", value: "", hint: "JSON, one per target" },
  { key: "log_target", label: "log_target (KLDiv)", kind: "checkbox", value: false },
];

/** Which loss takes which option (request key, form key). */
const OPTIONS = {
  SmoothL1Loss: [["beta", "beta"]],
  HuberLoss: [["delta", "delta"]],
  CrossEntropyLoss: [["label_smoothing", "smoothing"], ["weight", "weight"]],
  NLLLoss: [["weight", "weight"]],
  BCEWithLogitsLoss: [["pos_weight", "pos_weight"]],
  KLDivLoss: [["log_target", "log_target"]],
};
const OPTION_KEYS = ["beta", "delta", "smoothing", "weight", "pos_weight", "log_target"];

const round = (data) => JSON.stringify(data, (_, v) => (typeof v === "number" ? Number(v.toPrecision(5)) : v));

export function createLosses(panel, { values, onState, run }) {
  const form = controlForm(SCHEMA, (v) => update(v));
  form.set(values);
  let shownLoss = values.loss ?? form.values().loss; // a new loss starts from its own example
  const reset = el("button", { type: "button", class: "btn", id: "loss-example", text: "The loss's example" });
  reset.addEventListener("click", () => {
    form.set({ preds: "", targets: "" });
    update(form.values());
  });
  const call = el("p", { class: "fx-call", id: "loss-call" });
  const status = el("p", { class: "fx-status", role: "status", id: "loss-status" });
  const value = el("p", { class: "fx-value", id: "loss-value" });
  const figPer = el("div", { class: "fig", id: "loss-per" });
  const figGrad = el("div", { class: "fig", id: "loss-grad" });
  const figCurve = el("div", { class: "fig", id: "loss-curve" });
  replace(
    panel,
    el("div", { class: "fx-bar" }, form.root, reset),
    call,
    status,
    value,
    el(
      "div",
      { class: "fx-grid2" },
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Per element (reduction none)" }), figPer),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Gradient d loss / d prediction" }), figGrad),
      el("figure", { class: "fx-fig" }, el("figcaption", { text: "Loss as one prediction varies", id: "loss-curve-cap" }), figCurve),
    ),
  );

  /** The JSON in a text control (null when empty); a clear error when it is not JSON. */
  function json(key) {
    const control = form.inputs[key].control;
    control.removeAttribute("aria-invalid");
    if (!control.value.trim()) return null;
    try {
      return JSON.parse(control.value);
    } catch {
      control.setAttribute("aria-invalid", "true");
      throw new Error(`${form.inputs[key].spec.label} is not valid JSON: write numbers in [ ].`);
    }
  }

  function parse(key) {
    const data = json(key);
    return data === null ? null : { kind: "tensor", data };
  }

  /** The chosen loss's options, as the route takes them. */
  function options(v) {
    const out = {};
    for (const [name, key] of OPTIONS[v.loss] ?? []) {
      const spec = form.inputs[key].spec;
      if (spec.kind === "text") out[name] = json(key);
      else if (spec.kind === "checkbox") out[name] = v[key] === true;
      else out[name] = v[key] ?? spec.value;
    }
    return out;
  }

  async function update(v) {
    if (v.loss !== shownLoss) {
      shownLoss = v.loss;
      form.set({ preds: "", targets: "" });
      v = { ...v, preds: "", targets: "" };
    }
    onState(v);
    const takes = new Set((OPTIONS[v.loss] ?? []).map(([, key]) => key));
    for (const key of OPTION_KEYS) form.inputs[key].control.disabled = !takes.has(key);
    let body;
    try {
      body = {
        loss: v.loss,
        reduction: v.reduction,
        input: parse("preds"),
        target: parse("targets"),
        ...options(v),
      };
    } catch (err) {
      status.textContent = err.message;
      status.dataset.kind = "error";
      return;
    }
    const r = await run(status, () => api.effect("losses", body));
    if (!r) return;
    if (!v.preds || !v.targets) form.set({ preds: round(r.input.data), targets: round(r.target.data) });
    call.textContent = `${r.torch_call}: ${r.formula}`;
    value.textContent = `${r.reduction}: ${fmtNum(r.value)}   (mean ${fmtNum(r.mean)}, sum ${fmtNum(r.sum)}${r.batchmean !== undefined ? `, batchmean ${fmtNum(r.batchmean)}` : ""})`;
    await groupedBars(figPer, [{ name: "per element", y: flat(r.per_element) }], { yTitle: "loss" });
    await groupedBars(figGrad, [{ name: "gradient", y: flat(r.grad), color: "#d55e00" }], { yTitle: "d loss / d x" });
    const c = r.curve;
    await lines(figCurve, [{ name: `x[${c.index.join(", ")}]`, x: flat(c.x), y: flat(c.loss) }], {
      xTitle: `prediction x[${c.index.join(", ")}] (now ${fmtNum(c.current)})`,
      yTitle: "loss",
      shapes: [{ type: "line", yref: "paper", y0: 0, y1: 1, x0: c.current, x1: c.current, line: { dash: "dot", color: "#1b1f24" } }],
    });
  }

  return { refresh: () => update(form.values()), values: () => form.values() };
}
