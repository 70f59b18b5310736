/**
 * Share: a link that restores this exact setup (spec, weights seed, input makers, mode,
 * open view), optionally running on open and hiding panels for a focused lesson.
 * The workspace token is never in it; whoever opens it gets a workspace of their own.
 */

import { copyText } from "./code.js";
import { el, replace } from "./dom.js";

const HIDEABLE = [
  ["palette", "the layer palette"],
  ["builder", "the builder (stack)"],
  ["inspect", "Inspect"],
  ["code", "Code"],
];

const OPEN_ON = [
  ["run", "Run (the results)"],
  ["inspect", "Inspect"],
  ["code", "Code"],
];

export class SharePanel {
  /** ctx: {store, session, rebuild()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.hide = new Set(ctx.store.hide);
    this.tab = "run"; // the view the link opens on: Run unless the teacher picks another
    this.output = el("input", {
      type: "text",
      id: "share-link",
      readonly: true,
      class: "share-link",
      "aria-label": "Share link",
    });
  }

  async link() {
    const link = await this.ctx.store.link(this.hide, { tab: this.tab });
    return `${location.origin}/playground${link}`;
  }

  async update() {
    this.output.value = await this.link();
  }

  render() {
    const { store, session } = this.ctx;
    const autorun = el("input", {
      type: "checkbox",
      id: "share-autorun",
      checked: store.state.autorun,
    });
    autorun.addEventListener("change", () => {
      store.update({ autorun: autorun.checked });
      this.update();
    });
    const hides = HIDEABLE.map(([key, label]) => {
      const box = el("input", {
        type: "checkbox",
        checked: this.hide.has(key),
        dataset: { hide: key },
      });
      box.addEventListener("change", () => {
        if (box.checked) this.hide.add(key);
        else this.hide.delete(key);
        this.update();
      });
      return el("label", { class: "check" }, box, `hide ${label}`);
    });
    const tab = el("select", { id: "share-tab" });
    for (const [value, text] of OPEN_ON) tab.append(el("option", { value, text }));
    tab.value = this.tab;
    tab.addEventListener("change", () => {
      this.tab = tab.value;
      this.update();
    });
    const said = el("span", { class: "copy-status", role: "status" });
    const copy = el("button", {
      type: "button",
      class: "btn btn-primary",
      id: "copy-link",
      text: "Copy link",
      onclick: async () => {
        await this.update();
        said.textContent = (await copyText(this.output.value))
          ? "Copied."
          : "Select the link and copy it.";
      },
    });
    const parts = [
      el("h3", { text: "Share this setup" }),
      el("p", {
        text: "The link carries the model's spec, its weights seed, the inputs, the mode and the view it opens on, so it opens the same model with the same weights. Nothing else is needed: whoever opens it gets a workspace of their own.",
      }),
      el("label", { class: "check" }, autorun, "Run the model when the link opens"),
      el("label", { class: "inline-field", for: "share-tab" }, "Open on ", tab),
      el(
        "fieldset",
        { class: "hide-set" },
        el("legend", { text: "For a focused lesson, hide:" }),
        hides,
      ),
      el("div", { class: "share-row" }, this.output, copy, said),
    ];
    if (session.info && !session.asSeeded) {
      parts.push(
        el(
          "div",
          { class: "warn", role: "note" },
          el("p", {
            text: `Some layers kept their weights from an earlier version of this model, so they differ from a fresh build with seed ${store.state.seed}, which is what the link makes. Rebuild to see what the link will show.`,
          }),
          el("button", {
            type: "button",
            class: "btn",
            text: "Rebuild all weights from the seed",
            onclick: () => this.ctx.rebuild(),
          }),
        ),
      );
    }
    replace(this.root, parts);
    this.update();
  }
}
