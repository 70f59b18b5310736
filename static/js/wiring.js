/**
 * Which tensors a layer reads. By default a layer reads the layer before it (the first
 * layer: the first model input); a merge or a two-input layer (Add, Concat, Bilinear,
 * nn.Transformer's src and tgt) names its inputs: model inputs or earlier layers.
 */

import { el, uid } from "./dom.js";

/** The names layer `index` may read: the model inputs and the layers above it. */
export function sources(spec, index) {
  return [...Object.keys(spec.inputs), ...spec.layers.slice(0, index).map((l) => l.name)];
}

function sourceSelect(id, names, value, blank) {
  const select = el("select", { id, class: "wire-select" });
  select.append(el("option", { value: "", text: blank }));
  for (const n of names) select.append(el("option", { value: n, text: n }));
  if (value && !names.includes(value))
    select.append(el("option", { value, text: `${value} (missing)` }));
  select.value = value || "";
  return select;
}

/**
 * The wiring controls of one layer: a select per input slot for multi-input layers, an
 * "input" select folded under a <details> for the others. onChange(inputs | undefined).
 */
export function wiringControls(spec, index, entry, onChange) {
  const layer = spec.layers[index];
  const names = sources(spec, index);
  const spec_in = entry.inputs || { min: 1, max: 1, names: ["input"] };
  const multi = spec_in.max > 1;
  const current = layer.inputs ? [...layer.inputs] : [];
  const box = el("div", { class: "wire-slots" });
  // what a one-input layer reads when it names nothing: the layer before, or the first input
  const before = index
    ? `${spec.layers[index - 1].name} (the layer before)`
    : `${Object.keys(spec.inputs)[0]} (the model's input)`;
  const variadic = multi && spec_in.names.length === 1; // Add, Concat: "inputs", any number

  const emit = () => {
    const chosen = [...box.querySelectorAll("select")].map((s) => s.value).filter(Boolean);
    onChange(chosen.length ? chosen : undefined);
  };
  const addSlot = (i, value) => {
    const id = uid("wire");
    const slotName = variadic ? `input ${i + 1}` : spec_in.names[i] || `input ${i + 1}`;
    const select = sourceSelect(id, names, value, multi ? "choose…" : before);
    select.addEventListener("change", emit);
    const row = el("div", { class: "wire-slot" }, el("label", { for: id, text: slotName }), select);
    if (multi && i >= spec_in.min) {
      row.append(
        el("button", {
          type: "button",
          class: "btn btn-icon btn-small",
          "aria-label": `Remove input ${slotName}`,
          text: "−",
          onclick: () => {
            row.remove();
            emit();
          },
        }),
      );
    }
    box.append(row);
  };

  if (!multi) {
    addSlot(0, current[0]);
    const open = Boolean(layer.inputs);
    return el(
      "details",
      { class: "wire", open },
      el("summary", {
        text: `reads ${layer.inputs ? layer.inputs.join(", ") : before}`,
      }),
      box,
    );
  }
  const slots = Math.max(current.length, spec_in.min);
  for (let i = 0; i < slots; i += 1) addSlot(i, current[i]);
  const wrap = el(
    "div",
    { class: "wire wire-multi" },
    el("span", { class: "wire-title", text: "inputs" }),
    box,
  );
  if (spec_in.max > slots) {
    wrap.append(
      el("button", {
        type: "button",
        class: "btn btn-small",
        text: "+ input",
        onclick: () => {
          if (box.childElementCount < spec_in.max) addSlot(box.childElementCount, "");
        },
      }),
    );
  }
  return wrap;
}
