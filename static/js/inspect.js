/**
 * Inspect: the model as PyTorch sees it. print(model) verbatim, the per-layer summary
 * (output shape, parameters, activation memory, FLOPs), the parameter table with freeze
 * toggles, and one parameter's values. Loaded when the tab is open and the model changed.
 */

import { api } from "./api.js";
import { el, fmtBytes, fmtInt, fmtShape, fmtFlops, fmtSI, replace } from "./dom.js";
import { showParameter } from "./param_view.js";
import { parameterTable } from "./params.js";

export class Inspector {
  /** ctx: {store, session, visible(), report(error)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.loaded = null; // "<id>:<version>" last drawn
    this.tableBox = el("div", { id: "param-table-box" });
    this.paramBox = el("div", { id: "param-view", class: "param-view" });
    this.summaryBox = el("div", { id: "summary-box" });
  }

  /** Load (or reload) when visible and stale. */
  async refresh(force = false) {
    const info = this.ctx.session.info;
    if (!info) {
      replace(this.root, el("p", { class: "muted", text: "Apply the model to inspect it." }));
      this.loaded = null;
      return;
    }
    const ref = this.ctx.checkpoint?.() ?? null; // the time slider's step, when one is set
    const key = `${info.id}:${info.version}:${ref ? `${ref.training}@${ref.step}` : ""}`;
    if (!force && (this.loaded === key || !this.ctx.visible())) return;
    this.loaded = key;
    let summary;
    let table;
    try {
      [summary, table] = await this.ctx.session.withModel((id) =>
        Promise.all([api.summary(id), api.parameters(id, ref)]),
      );
    } catch (err) {
      this.loaded = null; // try again next time
      throw err;
    }
    replace(
      this.root,
      this.summaryBox,
      el(
        "section",
        { class: "inspect-section" },
        el("h3", { text: "print(model)" }),
        el("pre", {
          class: "module-tree",
          "aria-label": "print(model)",
          id: "module-tree",
          tabindex: "0",
          text: summary.module_tree,
        }),
      ),
      el(
        "section",
        { class: "inspect-section" },
        el("h3", { text: "Parameters" }),
        this.tableBox,
        this.paramBox,
      ),
    );
    this.drawSummary(summary);
    this.drawTable(table);
    const param = this.ctx.store.state.param;
    if (param && table.rows.some((r) => r.name === param)) this.open(param, false);
  }

  drawSummary(s) {
    const totals = el(
      "dl",
      { class: "totals-grid" },
      [
        ["parameters", fmtInt(s.total_params)],
        ["trainable", fmtInt(s.trainable_params)],
        ["activation memory", fmtBytes(s.total_activation_bytes)],
        ["one forward", fmtFlops(s.total_flops)],
      ].map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))),
    );
    const rows = s.layers.map((l) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", class: "mono", text: l.name }),
        el("td", { text: l.type }),
        el("td", { class: "mono", text: fmtShape(l.output_shape) }),
        el("td", { class: "num", text: fmtInt(l.params) }),
        el("td", { class: "num", text: fmtInt(l.trainable) }),
        el("td", { class: "num", text: fmtBytes(l.activation_bytes) }),
        el("td", { class: "num", text: fmtSI(l.flops) }),
      ),
    );
    const head = el(
      "tr",
      {},
      ["layer", "type", "output shape", "params", "trainable", "activation", "FLOPs"].map((h) =>
        el("th", { scope: "col", text: h }),
      ),
    );
    replace(
      this.summaryBox,
      el(
        "section",
        { class: "inspect-section" },
        el("h3", { text: "Summary" }),
        totals,
        el(
          "div",
          { class: "table-wrap" },
          el(
            "table",
            { class: "data-table", id: "summary-table" },
            el("thead", {}, head),
            el("tbody", {}, rows),
          ),
        ),
      ),
    );
  }

  drawTable(table) {
    const at = table.checkpoint;
    replace(
      this.tableBox,
      at
        ? el("p", {
            class: "note",
            id: "params-at-step",
            text: `Weights at step ${at.step} of the training (the Train tab's time slider); freezing changes the model itself.`,
          })
        : null,
      parameterTable(table, {
        selected: this.ctx.store.state.param,
        toggle: (name, flag) => this.toggle(name, flag),
        open: (name) => this.open(name),
      }),
    );
  }

  async toggle(name, flag) {
    const id = this.ctx.session.id;
    try {
      await api.setGrad(id, name, flag);
      const ref = this.ctx.checkpoint?.() ?? null;
      const [summary, table] = await Promise.all([api.summary(id), api.parameters(id, ref)]);
      this.drawSummary(summary);
      this.drawTable(table);
      this.root
        .querySelector(
          `[data-layer-toggle="${CSS.escape(name)}"], [data-param-toggle="${CSS.escape(name)}"]`,
        )
        ?.focus();
    } catch (err) {
      this.ctx.report(err);
    }
  }

  async open(name, scroll = true) {
    this.ctx.store.update({ param: name });
    for (const tr of this.tableBox.querySelectorAll("tr[data-param]"))
      tr.classList.toggle("selected", tr.dataset.param === name);
    try {
      await showParameter(this.paramBox, this.ctx.session.id, name);
      if (scroll) this.paramBox.scrollIntoView({ block: "nearest" });
    } catch (err) {
      this.ctx.report(err);
    }
  }
}
