/**
 * Undo and redo of the builder's edits: snapshots of the spec (its JSON), one taken when an
 * edit settles (after a pause in typing, so a word typed is one step), at most 100 kept.
 */

import { debounce } from "./dom.js";

const KEEP = 100;

export class EditHistory extends EventTarget {
  /** current(): the spec's JSON now; restore(json): put a snapshot back in the builder. */
  constructor(current, restore) {
    super();
    this.current = current;
    this.restore = restore;
    this.past = [current()];
    this.future = [];
    this.record = debounce(() => this.snap(), 400);
  }

  get canUndo() {
    return this.past.length > 1 || this.current() !== this.past[this.past.length - 1];
  }

  get canRedo() {
    return this.future.length > 0;
  }

  /** Take a snapshot if the spec changed since the last one (a new edit drops the redos). */
  snap() {
    this.record.cancel();
    const now = this.current();
    if (now === this.past[this.past.length - 1]) return;
    this.past.push(now);
    if (this.past.length > KEEP) this.past.shift();
    this.future = [];
    this.changed();
  }

  undo() {
    this.snap();
    if (this.past.length < 2) return;
    this.future.push(this.past.pop());
    this.put(this.past[this.past.length - 1]);
  }

  redo() {
    this.snap();
    if (!this.future.length) return;
    const next = this.future.pop();
    this.past.push(next);
    this.put(next);
  }

  /** Restore a snapshot; the builder may tidy it as it draws, so keep what it shows. */
  put(json) {
    this.restore(json);
    this.record.cancel();
    this.past[this.past.length - 1] = this.current();
    this.changed();
  }

  changed() {
    this.dispatchEvent(new Event("change"));
  }
}
