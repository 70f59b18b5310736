/**
 * The model as a stack of layer blocks: add, remove, duplicate, rename, reorder (drag, the
 * ↑/↓ buttons, or Alt+↑/↓ on a focused block), wire inputs, edit args. Structural changes
 * re-render the stack; typing in a field only edits the spec, so focus stays put.
 * Validation feedback (shape, params, memory, errors) is painted onto the blocks by name.
 */

import { argForm } from "./argform.js";
import { el, fmtBytes, fmtFlops, fmtInt, fmtShape, icon, replace } from "./dom.js";
import { wiringControls } from "./wiring.js";

/** A fresh, unique layer name from a type: Conv2d -> conv1, conv2, … */
export function freshName(spec, type) {
  const base = type.toLowerCase().replace(/[0-9]d$/, "").replace(/[^a-z0-9_]/g, "") || "layer";
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
    else if (entry.example?.args && arg.name in entry.example.args) args[arg.name] = entry.example.args[arg.name];
    else if (arg.default !== undefined) args[arg.name] = arg.default;
  }
  return { name: freshName(spec, entry.type), type: entry.type, args };
}

export class Stack {
  /** ctx: {store, entries: Map, edited(), jump(name), selected(name)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.selected = null;
    this.dragFrom = null;
    root.addEventListener("keydown", (e) => this.onKey(e));
    root.addEventListener("dragover", (e) => this.onDragOver(e));
    root.addEventListener("drop", (e) => this.onDrop(e));
  }

  get spec() {
    return this.ctx.store.state.spec;
  }

  render() {
    const blocks = this.spec.layers.map((layer, i) => this.block(layer, i));
    replace(this.root, blocks);
    if (!blocks.length) {
      this.root.append(el("li", { class: "stack-empty", text: "No layers yet: pick one from the palette." }));
    }
  }

  blockAt(i) {
    return this.root.querySelector(`.block[data-index="${i}"]`);
  }

  block(layer, i) {
    const entry = this.ctx.entries.get(layer.type);
    const n = this.spec.layers.length;
    const li = el("li", {
      class: "block",
      tabindex: "0",
      dataset: { index: String(i), layer: layer.name },
      "aria-label": `${layer.name}, ${layer.type}, layer ${i + 1} of ${n}`,
    });
    const handle = el("span", { class: "drag-handle", title: "Drag to reorder", "aria-hidden": "true", text: "⠿" });
    handle.addEventListener("pointerdown", () => (li.draggable = true));
    li.addEventListener("dragstart", (e) => {
      this.dragFrom = i;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", layer.name);
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", () => {
      li.draggable = false;
      li.classList.remove("dragging");
      this.clearDropMarks();
    });
    const name = el("input", { type: "text", class: "block-name", value: layer.name, spellcheck: "false", autocomplete: "off", "aria-label": `Name of layer ${i + 1}` });
    const fit = () => (name.style.width = `${Math.max(7, name.value.length + 2)}ch`);
    fit();
    name.addEventListener("input", () => {
      fit();
      layer.name = name.value.trim();
      li.dataset.layer = layer.name;
      this.ctx.edited(false);
    });
    name.addEventListener("change", () => this.refreshWiring());
    const action = (label, glyph, fn, disabled = false) =>
      el("button", { type: "button", class: "btn btn-icon btn-small", "aria-label": `${label} ${layer.name}`, title: label, disabled, onclick: fn }, icon(glyph));
    const head = el(
      "div",
      { class: "block-head" },
      handle,
      name,
      el("button", { type: "button", class: "block-type", title: entry?.doc || "", text: layer.type, "aria-label": `Show ${layer.name}'s activation`, onclick: () => this.ctx.jump(layer.name) }),
      el(
        "span",
        { class: "block-actions" },
        action("Move up", "up", () => this.move(i, i - 1), i === 0),
        action("Move down", "down", () => this.move(i, i + 1), i === n - 1),
        action("Duplicate", "copy", () => this.duplicate(i)),
        action("Remove", "close", () => this.remove(i)),
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
        this.ctx.edited(false);
      });
      if (main.childElementCount) body.append(main);
      body.append(el("div", { class: "block-more" }, el("div", { class: "wiring" }, this.wiring(layer, i, entry)), more));
    }
    li.append(
      body,
      el("div", { class: "block-feedback", "aria-live": "off" }),
      el("div", { class: "block-error", role: "alert", hidden: true }),
    );
    if (this.selected === layer.name) li.classList.add("selected");
    return li;
  }

  wiring(layer, i, entry) {
    return wiringControls(this.spec, i, entry, (inputs) => {
      if (inputs) layer.inputs = inputs;
      else delete layer.inputs;
      this.ctx.edited(false);
    });
  }

  /** Rebuild the input selects after a rename, leaving every other field (and focus) alone. */
  refreshWiring() {
    this.spec.layers.forEach((layer, i) => {
      const slot = this.blockAt(i)?.querySelector(".wiring");
      const entry = this.ctx.entries.get(layer.type);
      if (slot && entry && !slot.contains(document.activeElement)) replace(slot, this.wiring(layer, i, entry));
    });
  }

  insert(layer, at = null) {
    const sel = this.spec.layers.findIndex((l) => l.name === this.selected);
    const index = at ?? (sel >= 0 ? sel + 1 : this.spec.layers.length);
    this.spec.layers.splice(index, 0, layer);
    this.selected = layer.name;
    this.structural(index);
  }

  move(from, to) {
    const layers = this.spec.layers;
    if (to < 0 || to >= layers.length || from === to) return;
    const [layer] = layers.splice(from, 1);
    layers.splice(to, 0, layer);
    this.structural(to);
  }

  duplicate(i) {
    const copy = structuredClone(this.spec.layers[i]);
    copy.name = freshName(this.spec, copy.name.replace(/_?\d+$/, "") || copy.type);
    this.spec.layers.splice(i + 1, 0, copy);
    this.structural(i + 1);
  }

  remove(i) {
    const [gone] = this.spec.layers.splice(i, 1);
    if (this.selected === gone?.name) this.selected = null;
    this.structural(Math.min(i, this.spec.layers.length - 1));
  }

  structural(focusIndex) {
    this.render();
    this.ctx.edited(true);
    if (focusIndex !== null && focusIndex >= 0) this.blockAt(focusIndex)?.focus();
  }

  select(name, { scroll = true } = {}) {
    this.selected = name;
    this.ctx.selected?.(name);
    for (const b of this.root.querySelectorAll(".block")) b.classList.toggle("selected", b.dataset.layer === name);
    const block = this.root.querySelector(`.block[data-layer="${CSS.escape(name)}"]`);
    if (block && scroll) block.scrollIntoView({ block: "nearest" });
    return block;
  }

  onKey(e) {
    const li = e.target.closest?.(".block");
    if (!li || e.target !== li) return; // keys typed into a field are the field's
    const i = Number(li.dataset.index);
    if (e.altKey && (e.key === "ArrowUp" || e.key === "ArrowDown")) {
      e.preventDefault();
      this.move(i, e.key === "ArrowUp" ? i - 1 : i + 1);
    } else if (e.key === "ArrowUp" || e.key === "ArrowDown") {
      e.preventDefault();
      this.blockAt(e.key === "ArrowUp" ? i - 1 : i + 1)?.focus();
    } else if (e.key === "Delete") {
      e.preventDefault();
      this.remove(i);
    } else if (e.key === "Enter") {
      e.preventDefault();
      this.select(li.dataset.layer, { scroll: false });
      this.ctx.jump(li.dataset.layer);
    }
  }

  dropIndex(e) {
    const blocks = [...this.root.querySelectorAll(".block")];
    for (const b of blocks) {
      const r = b.getBoundingClientRect();
      if (e.clientY < r.top + r.height / 2) return Number(b.dataset.index);
    }
    return blocks.length;
  }

  clearDropMarks() {
    for (const b of this.root.querySelectorAll(".drop-before, .drop-after")) b.classList.remove("drop-before", "drop-after");
  }

  onDragOver(e) {
    if (this.dragFrom === null) return;
    e.preventDefault();
    this.clearDropMarks();
    const at = this.dropIndex(e);
    const target = this.blockAt(at) || this.blockAt(at - 1);
    target?.classList.add(this.blockAt(at) ? "drop-before" : "drop-after");
  }

  onDrop(e) {
    if (this.dragFrom === null) return;
    e.preventDefault();
    const from = this.dragFrom;
    let to = this.dropIndex(e);
    this.dragFrom = null;
    if (to > from) to -= 1;
    this.clearDropMarks();
    this.move(from, to);
  }

  /** Paint /api/validate's answer on the blocks: shapes and costs, or the error in place. */
  feedback(result) {
    const infos = new Map((result?.layers || []).map((l) => [l.name, l]));
    const err = result && !result.valid ? result.error : null;
    let afterError = false;
    this.spec.layers.forEach((layer, i) => {
      const li = this.blockAt(i);
      if (!li) return;
      const info = infos.get(layer.name);
      const fb = li.querySelector(".block-feedback");
      const box = li.querySelector(".block-error");
      const mine = err && err.layer === layer.name;
      li.classList.toggle("has-error", Boolean(mine));
      for (const a of li.querySelectorAll(".arg.arg-bad")) a.classList.remove("arg-bad");
      box.hidden = !mine;
      box.textContent = mine ? err.message : "";
      if (mine && err.detail?.arg) li.querySelector(`.arg[data-arg="${CSS.escape(err.detail.arg)}"]`)?.classList.add("arg-bad");
      if (info) {
        replace(
          fb,
          el("span", { class: "out-shape", title: "output shape", text: `→ ${fmtShape(info.output_shape)}` }),
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
      if (mine) afterError = true;
    });
  }
}
