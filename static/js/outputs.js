/**
 * What an output means, when the model says: the predicted class of a classifier (its
 * labels), or one tag per word for a tagger (labels and the words of a token input).
 */

import { el } from "./dom.js";
import { squeezed } from "./f16.js";

function argmax(values, from, n) {
  let best = 0;
  for (let i = 1; i < n; i += 1) if (values[from + i] > values[from + best]) best = i;
  return best;
}

function prediction(t, labels) {
  const i = argmax(t.values, 0, labels.length);
  return el(
    "p",
    { class: "prediction" },
    "Prediction: ",
    el("strong", { class: "pred-label", text: labels[i] }),
    ` (score ${t.values[i].toPrecision(4)}, the largest of ${labels.length})`,
  );
}

function tagList(t, tokens, labels) {
  const list = el("ol", { class: "tags", "aria-label": "One tag per word" });
  tokens.forEach((word, r) => {
    const k = argmax(t.values, r * labels.length, labels.length);
    list.append(
      el(
        "li",
        { class: "tag-pair" },
        el("span", { class: "tag-word", text: word }),
        el("span", { class: "tag-label", text: labels[k] }),
      ),
    );
  });
  return list;
}

/** The reading of a decoded output tensor, or null when it is neither kind. */
export function outputReading(t, labels, tokens) {
  if (!labels) return null;
  const { dims } = squeezed(t.shape);
  if (tokens && dims.length === 2 && dims[0] === tokens.length && dims[1] === labels.length) {
    return tagList(t, tokens, labels);
  }
  if (dims.length === 1 && dims[0] === labels.length) return prediction(t, labels);
  return el("p", { class: "prediction muted", text: noReading(dims, labels, tokens) });
}

/** Why an output with class labels has no prediction, and what to change. */
function noReading(dims, labels, tokens) {
  const n = labels.length;
  const scores = dims.length ? dims[dims.length - 1] : 1;
  const per = tokens ? ` per word (${tokens.length} words)` : "";
  if (scores !== n)
    return `No prediction: the model gives ${scores} scores${per} but there are ${n} class labels. Make the last layer give ${n} outputs, or give ${scores} labels.`;
  return `No prediction: the output's shape ${dims.join("×")} is not one score per class label${per}.`;
}
