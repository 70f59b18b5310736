/**
 * The controls of an effects tab, built from a small schema: labelled inputs (number, range
 * with a number beside it, select, checkbox, text) that read and write one plain object of
 * values, so that a tab's whole state fits in the URL hash and comes back from it.
 */

import { el, field, uid } from "../dom.js";

/**
 * schema: [{key, label, kind: "number"|"range"|"select"|"checkbox"|"text"|"textarea",
 *           value, min, max, step, options, hint}]; onChange(values) after every edit.
 */
export function controlForm(schema, onChange) {
  const inputs = {};
  const nodes = [];
  const changed = () => onChange(values());
  for (const spec of schema) {
    const id = uid(`fx-${spec.key}`);
    let control;
    if (spec.kind === "select") {
      control = el(
        "select",
        { id, name: spec.key },
        spec.options.map((o) => el("option", { value: String(o), text: String(o) })),
      );
    } else if (spec.kind === "checkbox") {
      control = el("input", { id, name: spec.key, type: "checkbox" });
    } else if (spec.kind === "textarea") {
      control = el("textarea", { id, name: spec.key, rows: 3, spellcheck: "false" });
    } else {
      const type = spec.kind === "text" ? "text" : "number";
      control = el("input", { id, name: spec.key, type, min: spec.min, max: spec.max });
      if (spec.step !== undefined) control.step = String(spec.step);
    }
    control.dataset.key = spec.key;
    inputs[spec.key] = { spec, control };
    let row = control;
    if (spec.kind === "range") {
      const slider = el("input", {
        type: "range",
        min: spec.min,
        max: spec.max,
        step: String(spec.step ?? 1),
        "aria-label": `${spec.label} (slider)`,
        id: `${id}-range`,
      });
      slider.addEventListener("input", () => {
        control.value = slider.value;
        changed();
      });
      control.addEventListener("input", () => {
        slider.value = control.value;
      });
      inputs[spec.key].slider = slider;
      row = el("span", { class: "fx-range" }, slider, control);
    }
    const event = spec.kind === "select" || spec.kind === "checkbox" ? "change" : "input";
    control.addEventListener(event, changed);
    const label = el("label", { for: id, class: "field-label", text: spec.label });
    if (spec.kind === "range") {
      nodes.push(el("div", { class: "field" }, label, row));
    } else {
      nodes.push(field(spec.label, control, { hint: spec.hint, inline: spec.kind === "checkbox" }));
    }
  }

  function values() {
    const out = {};
    for (const [key, { spec, control }] of Object.entries(inputs)) {
      if (spec.kind === "checkbox") out[key] = control.checked;
      else if (spec.kind === "number" || spec.kind === "range") {
        out[key] = control.value === "" ? null : Number(control.value);
      } else out[key] = control.value;
    }
    return out;
  }

  function set(vals) {
    for (const [key, value] of Object.entries(vals)) {
      const item = inputs[key];
      if (!item || value === undefined) continue;
      if (item.spec.kind === "checkbox") item.control.checked = value === true || value === "1";
      else item.control.value = value === null ? "" : String(value);
      if (item.slider) item.slider.value = item.control.value;
    }
  }

  set(Object.fromEntries(schema.map((s) => [s.key, s.value])));
  const root = el("div", { class: "fx-controls" }, nodes);
  return { root, values, set, inputs };
}

/** Values from the hash (strings) turned into what a schema's controls hold. */
export function fromHash(schema, params) {
  const out = {};
  for (const spec of schema) {
    if (!params.has(spec.key)) continue;
    const raw = params.get(spec.key);
    if (spec.kind === "checkbox") out[spec.key] = raw === "1";
    else if (spec.kind === "number" || spec.kind === "range") {
      out[spec.key] = raw === "" || !Number.isFinite(Number(raw)) ? null : Number(raw);
    } else if (spec.kind === "select") {
      if (spec.options.map(String).includes(raw)) out[spec.key] = raw;
    } else out[spec.key] = raw;
  }
  return out;
}

/** A tab's values as strings for the hash. */
export function toHash(values) {
  const out = {};
  for (const [k, v] of Object.entries(values)) {
    if (typeof v === "boolean") out[k] = v ? "1" : "0";
    else out[k] = v === null || v === undefined ? "" : String(v);
  }
  return out;
}
