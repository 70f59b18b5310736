/**
 * Where a tab's input comes from: its own seeded random values, or the activation of a layer
 * of one of the workspace's models (the API's {"kind": "model"} source: the model run on
 * seeded random inputs, the layer's output taken). One plane of it is drawn: `channel` counts
 * the planes of the output (batch × channels), for 2-D pooling each an H×W map, for 1-D a
 * row of L values. Only layers whose output the pooling accepts are offered.
 */

import { api } from "../api.js";
import { el, replace } from "../dom.js";

/** Ranks the pooling takes: 2-D pools (C, H, W) or (N, C, H, W); 1-D (C, L) or (N, C, L). */
function fits(shape, dims) {
  const rank = shape.length;
  return dims === 1 ? rank === 2 || rank === 3 : rank === 3 || rank === 4;
}

/** The number of planes (drawable maps or rows) in an output of `shape`. */
export function planes(shape, dims) {
  const last = shape.slice(dims === 1 ? -1 : -2);
  return shape.reduce((a, b) => a * b, 1) / last.reduce((a, b) => a * b, 1);
}

export function modelSourcePicker({ values, onChange }) {
  const kind = el(
    "select",
    { id: "src-kind" },
    el("option", { value: "random", text: "seeded random values" }),
    el("option", { value: "model", text: "a layer of one of your models" }),
  );
  const model = el("select", { id: "src-model" });
  const layer = el("select", { id: "src-layer" });
  const channel = el("input", { id: "src-channel", type: "number", min: "0", value: "0" });
  const note = el("span", { class: "field-hint", id: "src-note" });
  const field = (label, control) =>
    el(
      "div",
      { class: "field" },
      el("label", { for: control.id, class: "field-label", text: label }),
      control,
    );
  const modelFields = el(
    "div",
    { class: "fx-source-model" },
    field("Model", model),
    field("Layer", layer),
    field("Plane (batch × channel)", channel),
    note,
  );
  const root = el("div", { class: "fx-bar fx-source" }, field("Input", kind), modelFields);
  let dims = 2;
  let layers = []; // the summary's layers of the chosen model
  const want = {
    model: values.model || "",
    layer: values.layer || "",
    channel: values.channel || "0",
  };
  kind.value = values.source === "model" ? "model" : "random";

  async function loadModels() {
    const { models } = await api.listModels();
    const label = (m) => `${m.name} (${m.id.slice(0, 6)})`;
    replace(model, ...models.map((m) => el("option", { value: m.id, text: label(m) })));
    if (!models.length) {
      note.textContent = "No models in this workspace yet: build one in the playground first.";
      return;
    }
    note.textContent = "";
    if (models.some((m) => m.id === want.model)) model.value = want.model;
    await loadLayers();
  }

  async function loadLayers() {
    if (!model.value) return;
    layers = (await api.summary(model.value)).layers;
    const usable = layers.filter((l) => fits(l.output_shape, dims));
    const label = (l) => `${l.name} (${l.type}, ${l.output_shape.join("×")})`;
    replace(layer, ...usable.map((l) => el("option", { value: l.name, text: label(l) })));
    if (usable.some((l) => l.name === want.layer)) layer.value = want.layer;
    note.textContent = usable.length
      ? ""
      : `No layer of this model gives what ${dims}-D pooling takes.`;
    limitChannel();
  }

  function limitChannel() {
    const info = layers.find((l) => l.name === layer.value);
    const count = info ? planes(info.output_shape, dims) : 1;
    channel.max = String(count - 1);
    const c = Math.min(Math.max(Number(want.channel) || 0, 0), count - 1);
    channel.value = String(c);
  }

  async function show() {
    modelFields.hidden = kind.value !== "model";
    if (kind.value !== "model" || model.options.length) return;
    try {
      await loadModels();
    } catch (err) {
      note.textContent = err.message; // the API's words, as text
    }
  }

  const changed = () => {
    want.model = model.value;
    want.layer = layer.value;
    want.channel = channel.value;
    onChange();
  };
  kind.addEventListener("change", async () => {
    await show();
    onChange();
  });
  model.addEventListener("change", async () => {
    try {
      await loadLayers();
    } catch (err) {
      note.textContent = err.message;
    }
    changed();
  });
  layer.addEventListener("change", () => {
    want.layer = layer.value;
    limitChannel();
    changed();
  });
  channel.addEventListener("input", changed);

  return {
    root,
    /** Set the pooling's dimensions (the layers offered depend on it). */
    async setDims(d) {
      if (d === dims) return;
      dims = d;
      if (kind.value !== "model" || !model.value) return;
      try {
        await loadLayers();
      } catch (err) {
        note.textContent = err.message;
      }
    },
    ready: () => show(),
    /** The API source, or null for the tab's own random values. */
    source: () =>
      kind.value === "model" && model.value && layer.value
        ? { kind: "model", model_id: model.value, layer: layer.value }
        : null,
    /** Which plane to draw. */
    channel: () => (kind.value === "model" ? Number(channel.value) || 0 : 0),
    /** The picker's part of the page state (the URL hash). */
    state: () =>
      kind.value === "model"
        ? { source: "model", model: model.value, layer: layer.value, channel: channel.value }
        : { source: "random" },
  };
}
