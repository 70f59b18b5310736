/**
 * One layer block of the stack: drag handle, editable name, type (a click jumps to its
 * activation), move/duplicate/remove buttons, the catalog-generated arg form, the input
 * wiring, and the slots where validation feedback is painted. Also how new layers are
 * named and filled in from the catalog.
 */

import { argForm } from "./argform.js";
import { el, fmtBytes, fmtFlops, fmtInt, fmtShape, icon, replace } from "./dom.js";

/** [list, index] of every place that names `layer`: other layers' inputs, the outputs. */
function readersOf(spec, layer) {
  const lists = [...spec.layers.filter((l) => l !== layer).map((l) => l.inputs), spec.outputs];
  const out = [];
  for (const list of lists.filter(Boolean))
    list.forEach((n, k) => n === layer.name && out.push([list, k]));
  return out;
}

/** A fresh, unique layer name from a type: Conv2d -> conv1, conv2, … */
export function freshName(spec, type) {
  const base =
    type
      .toLowerCase()
      .replace(/[0-9]d$/, "")
      .replace(/[^a-z0-9_]/g, "") || "layer";
  const taken = new Set([...Object.keys(spec.inputs), ...spec.layers.map((l) => l.name)]);
  let n = 1;
  while (taken.has(`${base}${n}`)) n += 1;
  return `${base}${n}`;
}

/** A new layer of `entry`'s type: required args from the catalog's example, or auto. */
export function newLayer(spec, entry) {
  const args = {};
  for (const arg of entry.args) {
    if (!arg.required) continue;
    if (arg.auto) args[arg.name] = "auto";
    else if (entry.example?.args && arg.name in entry.example.args)
      args[arg.name] = entry.example.args[arg.name];
    else if (arg.default !== undefined) args[arg.name] = arg.default;
  }
  return { name: freshName(spec, entry.type), type: entry.type, args };
}

/** The <li> for layer i of stack.spec; its buttons and fields call back into the stack. */
export function layerBlock(stack, layer, i) {
  const entry = stack.ctx.entries.get(layer.type);
  const n = stack.spec.layers.length;
  const li = el("li", {
    class: "block",
    tabindex: "0",
    dataset: { index: String(i), layer: layer.name },
    "aria-label": `${layer.name}, ${layer.type}, layer ${i + 1} of ${n}`,
  });
  const handle = el("span", {
    class: "drag-handle",
    title: "Drag to reorder",
    "aria-hidden": "true",
    text: "⠿",
  });
  handle.addEventListener("pointerdown", () => (li.draggable = true));
  li.addEventListener("dragstart", (e) => {
    stack.dragFrom = i;
    e.dataTransfer.effectAllowed = "move";
    e.dataTransfer.setData("text/plain", layer.name);
    li.classList.add("dragging");
  });
  li.addEventListener("dragend", () => {
    li.draggable = false;
    li.classList.remove("dragging");
    stack.clearDropMarks();
  });
  const name = el("input", {
    type: "text",
    class: "block-name",
    value: layer.name,
    spellcheck: "false",
    autocomplete: "off",
    "aria-label": `Name of layer ${i + 1}`,
  });
  const fit = () => (name.style.width = `${Math.max(7, name.value.length + 2)}ch`);
  fit();
  let readers = null; // the slots that read this layer, found when a rename starts
  name.addEventListener("focus", () => (readers = null));
  name.addEventListener("input", () => {
    fit();
    readers ??= readersOf(stack.spec, layer);
    layer.name = name.value.trim();
    for (const [list, k] of readers) list[k] = layer.name; // a rename carries over
    li.dataset.layer = layer.name;
    stack.ctx.edited();
  });
  name.addEventListener("change", () => stack.refreshWiring());
  const action = (label, glyph, fn, disabled = false) =>
    el(
      "button",
      {
        type: "button",
        class: "btn btn-icon btn-small",
        "aria-label": `${label} ${layer.name}`,
        title: label,
        disabled,
        onclick: fn,
      },
      icon(glyph),
    );
  const head = el(
    "div",
    { class: "block-head" },
    handle,
    name,
    el("button", {
      type: "button",
      class: "block-type",
      title: entry?.doc || "",
      text: layer.type,
      "aria-label": `Show ${layer.name}'s activation`,
      onclick: () => stack.ctx.jump(layer.name),
    }),
    el(
      "span",
      { class: "block-actions" },
      action("Move up", "up", () => stack.move(i, i - 1), i === 0),
      action("Move down", "down", () => stack.move(i, i + 1), i === n - 1),
      action("Duplicate", "copy", () => stack.duplicate(i)),
      action("Remove", "close", () => stack.remove(i)),
    ),
  );
  li.append(head);
  const body = el("div", { class: "block-body" });
  if (!entry) {
    body.append(el("p", { class: "block-error-text", text: `Unknown layer type ${layer.type}.` }));
  } else {
    const [main, more] = argForm(entry, layer, (arg, value) => {
      layer.args = layer.args || {};
      if (value === undefined) delete layer.args[arg];
      else layer.args[arg] = value;
      stack.ctx.edited();
    });
    if (main.childElementCount) body.append(main);
    body.append(
      el(
        "div",
        { class: "block-more" },
        el("div", { class: "wiring" }, stack.wiring(layer, i, entry)),
        more,
      ),
    );
  }
  li.append(
    body,
    el("div", { class: "block-feedback", "aria-live": "off" }),
    el("div", { class: "block-error", role: "alert", hidden: true }),
  );
  if (stack.selected === layer.name) li.classList.add("selected");
  return li;
}

/**
 * Paint one block with what /api/validate said: the output shape and costs (info), the
 * error when it is this layer's (err, in the API's words, with its arg marked), or why
 * the layer was not checked (after an error above it).
 */
export function paintBlock(li, layer, info, err, afterError) {
  const fb = li.querySelector(".block-feedback");
  const box = li.querySelector(".block-error");
  const mine = Boolean(err && err.layer === layer.name);
  li.classList.toggle("has-error", mine);
  for (const a of li.querySelectorAll(".arg.arg-bad")) a.classList.remove("arg-bad");
  box.hidden = !mine;
  box.textContent = mine ? err.message : "";
  if (mine && err.detail?.arg) {
    li.querySelector(`.arg[data-arg="${CSS.escape(err.detail.arg)}"]`)?.classList.add("arg-bad");
  }
  if (info) {
    replace(
      fb,
      el("span", {
        class: "out-shape",
        title: "output shape",
        text: `→ ${fmtShape(info.output_shape)}`,
      }),
      el("span", { title: "parameters", text: `${fmtInt(info.params)} params` }),
      el("span", { title: "activation memory", text: fmtBytes(info.activation_bytes) }),
      el("span", { title: "floating-point operations", text: fmtFlops(info.flops) }),
    );
    for (const name of info.auto || []) {
      const slot = li.querySelector(`[data-auto-for="${CSS.escape(name)}"]`);
      if (slot) slot.textContent = `= ${JSON.stringify(info.args[name])}`;
    }
  } else {
    const why = afterError ? "not checked: fix the error above first" : "";
    replace(fb, why ? el("span", { class: "muted", text: why }) : null);
  }
  return mine;
}
