/**
 * The model as a stack of layer blocks: add, remove, duplicate, rename, reorder (drag, the
 * ↑/↓ buttons, or Alt+↑/↓ on a focused block), wire inputs, edit args. Structural changes
 * re-render the stack; typing in a field only edits the spec, so focus stays put.
 * A click on a block (or Enter) jumps to its activation. Validation feedback (shape,
 * params, memory, errors) is painted onto the blocks by name.
 * Each block is built by block.js.
 */

import { freshName, layerBlock, newLayer, paintBlock } from "./block.js";
import { el, fmtBytes, fmtFlops, fmtInt, replace } from "./dom.js";
import { wiringControls } from "./wiring.js";

export class Stack {
  /** ctx: {store, entries: Map, edited({step}), settle(), jump(name), selected(name)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.selected = null;
    this.dragFrom = null;
    this.dragNew = null; // a palette entry being dragged in
    root.addEventListener("keydown", (e) => this.onKey(e));
    root.addEventListener("dragover", (e) => this.onDragOver(e));
    root.addEventListener("drop", (e) => this.onDrop(e));
    root.addEventListener("click", (e) => this.onClick(e));
  }

  get spec() {
    return this.ctx.store.state.spec;
  }

  render() {
    const blocks = this.spec.layers.map((layer, i) => this.block(layer, i));
    replace(this.root, blocks);
    if (!blocks.length) {
      this.root.append(
        el("li", { class: "stack-empty", text: "No layers yet: pick one from the palette." }),
      );
    }
  }

  blockAt(i) {
    return this.root.querySelector(`.block[data-index="${i}"]`);
  }

  block(layer, i) {
    return layerBlock(this, layer, i);
  }

  wiring(layer, i, entry) {
    return wiringControls(this.spec, i, entry, (inputs) => {
      if (inputs) layer.inputs = inputs;
      else delete layer.inputs;
      this.ctx.edited();
    });
  }

  /** Rebuild the input selects after a rename, leaving every other field (and focus) alone. */
  refreshWiring() {
    this.spec.layers.forEach((layer, i) => {
      const slot = this.blockAt(i)?.querySelector(".wiring");
      const entry = this.ctx.entries.get(layer.type);
      if (slot && entry && !slot.contains(document.activeElement))
        replace(slot, this.wiring(layer, i, entry));
    });
  }

  insert(layer, at = null) {
    this.ctx.settle?.(); // the edits before this one are one undo step
    const sel = this.spec.layers.findIndex((l) => l.name === this.selected);
    const index = at ?? (sel >= 0 ? sel + 1 : this.spec.layers.length);
    this.spec.layers.splice(index, 0, layer);
    this.selected = layer.name;
    this.structural(index);
  }

  move(from, to) {
    this.ctx.settle?.(); // the edits before this one are one undo step
    const layers = this.spec.layers;
    if (to < 0 || to >= layers.length || from === to) return;
    const [layer] = layers.splice(from, 1);
    layers.splice(to, 0, layer);
    this.structural(to);
  }

  duplicate(i) {
    this.ctx.settle?.(); // the edits before this one are one undo step
    const copy = structuredClone(this.spec.layers[i]);
    copy.name = freshName(this.spec, copy.name.replace(/_?\d+$/, "") || copy.type);
    this.spec.layers.splice(i + 1, 0, copy);
    this.structural(i + 1);
  }

  remove(i) {
    this.ctx.settle?.(); // the edits before this one are one undo step
    const [gone] = this.spec.layers.splice(i, 1);
    if (this.selected === gone?.name) this.selected = null;
    this.structural(Math.min(i, this.spec.layers.length - 1));
  }

  structural(focusIndex) {
    this.render();
    this.ctx.edited({ step: true });
    if (focusIndex !== null && focusIndex >= 0) this.blockAt(focusIndex)?.focus();
  }

  select(name, { scroll = true } = {}) {
    this.selected = name;
    this.ctx.selected?.(name);
    for (const b of this.root.querySelectorAll(".block"))
      b.classList.toggle("selected", b.dataset.layer === name);
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

  /** A click on a block's bare surface (not a field or button) jumps to its activation. */
  onClick(e) {
    const li = e.target.closest?.(".block");
    if (!li || e.target.closest("input, select, textarea, button, summary, label, a, details"))
      return;
    this.select(li.dataset.layer, { scroll: false });
    this.ctx.jump(li.dataset.layer);
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
    for (const b of this.root.querySelectorAll(".drop-before, .drop-after"))
      b.classList.remove("drop-before", "drop-after");
  }

  onDragOver(e) {
    if (this.dragFrom === null && !this.dragNew) return;
    e.preventDefault();
    this.clearDropMarks();
    const at = this.dropIndex(e);
    const target = this.blockAt(at) || this.blockAt(at - 1);
    target?.classList.add(this.blockAt(at) ? "drop-before" : "drop-after");
  }

  onDrop(e) {
    if (this.dragNew) {
      // a layer dragged from the palette: a new block where it was dropped
      e.preventDefault();
      const entry = this.dragNew;
      this.dragNew = null;
      this.clearDropMarks();
      this.insert(newLayer(this.spec, entry), this.dropIndex(e));
      return;
    }
    if (this.dragFrom === null) return;
    e.preventDefault();
    const from = this.dragFrom;
    let to = this.dropIndex(e);
    this.dragFrom = null;
    if (to > from) to -= 1;
    this.clearDropMarks();
    this.move(from, to);
  }

  /**
   * Paint /api/validate's answer: on the blocks (shapes and costs, or the error in place),
   * in errorBox (an error no block owns) and in totalsBox (the model's totals).
   */
  feedback(result, errorBox = null, totalsBox = null) {
    const infos = new Map((result?.layers || []).map((l) => [l.name, l]));
    const err = result && !result.valid ? result.error : null;
    let afterError = false;
    this.spec.layers.forEach((layer, i) => {
      const li = this.blockAt(i);
      if (li && paintBlock(li, layer, infos.get(layer.name), err, afterError)) afterError = true;
    });
    const onBlock = Boolean(err?.layer && this.spec.layers.some((l) => l.name === err.layer));
    if (errorBox) {
      errorBox.hidden = !err || onBlock;
      errorBox.textContent = err && !onBlock ? err.message : "";
    }
    if (!totalsBox) return;
    if (!err) {
      replace(
        totalsBox,
        el("span", { text: `Total: ${fmtInt(result.total_params)} parameters` }),
        el("span", { text: `${fmtBytes(result.total_activation_bytes)} of activations` }),
        el("span", { text: `${fmtFlops(result.total_flops)} per forward` }),
      );
    } else {
      const what = err.layer ? `Fix ${err.layer}` : "Fix the spec";
      replace(totalsBox, el("span", { class: "bad", text: `${what} to see the totals.` }));
    }
  }
}
