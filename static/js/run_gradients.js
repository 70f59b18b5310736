/**
 * Gradients in the Run tab. With the toggle on, a run asks the server for the gradient of
 * the predicted class's score (one forward and one backward, POST /run with `gradients`),
 * and each layer's card (and the input's) shows its gradient map next to its activation:
 * the same chart, statistics and downloads, on a diverging colour scale centred on zero
 * (blue: raising this value lowers the score, red: raises it).
 *
 * The toggle lives in the page state (`gradients`), so a share link keeps it.
 */

import { el, fmtNum, fmtShape } from "./dom.js";
import { decodePayload } from "./f16.js";
import { planView } from "./tensor_view.js";

/** The part of POST /run's body that asks for gradients (nothing when the toggle is off). */
export function gradientRequest(state) {
  return state.gradients ? { gradients: { target: "predicted" } } : {};
}

/** The "Gradients" checkbox; `onChange(on)` stores the choice and runs again. */
export function gradientToggle(on, onChange) {
  const box = el("input", { type: "checkbox", id: "run-gradients", checked: Boolean(on) });
  box.addEventListener("change", () => onChange(box.checked));
  return el(
    "label",
    {
      class: "grad-toggle",
      title: "Also backpropagate the predicted class's score: one backward pass more",
    },
    box,
    " Gradients beside the activations",
  );
}

/** A sentence saying what was differentiated: "∂ score of class 3 (Dress) = 4.2 / ∂ …". */
export function gradientSummary(info, labels) {
  if (!info) return null;
  const cls = info.target;
  const what =
    cls === null || cls === undefined
      ? "the loss"
      : `the score of class ${cls}${labels && labels[cls] ? ` (${labels[cls]})` : ""}`;
  return el("p", {
    class: "run-meta grad-summary",
    text: `Gradients of ${what} = ${fmtNum(info.objective)}, one backward pass, drawn beside each activation.`,
  });
}

/**
 * Statistics whose range is symmetric around zero, so the map is drawn on the diverging
 * scale even when every value has one sign (charts.colorAxis diverges when lo < 0 < hi).
 */
function centred(stats) {
  if (!stats || stats.min === null || stats.min === undefined) return stats;
  const m = Math.max(Math.abs(stats.min), Math.abs(stats.max)) || 1e-12;
  return { ...stats, min: -m, max: m };
}

/**
 * The gradient section of a card: `results.body` draws it like the activation (lazily, by
 * the same observer), under its own title. `opts` are the activation's view options.
 */
export function gradientSection(results, name, grad, opts = {}) {
  const title = `${name} · gradient`;
  const body = results.body(title, grad.tensor, grad.stats, opts);
  // the histogram and the numbers keep the exact statistics; only the colours are centred
  body.querySelector(".fig").plan = () =>
    planView(decodePayload(grad.tensor), { ...opts, title, stats: centred(grad.stats) });
  return el(
    "section",
    { class: "extra grad", dataset: { gradient: name } },
    el(
      "h5",
      {},
      el("span", { class: "mono", text: "gradient" }),
      el("span", { class: "shape", text: fmtShape(grad.tensor.true_shape || grad.tensor.shape) }),
      el("span", { class: "muted", text: "red raises the score, blue lowers it" }),
    ),
    body,
  );
}
