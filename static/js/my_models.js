/**
 * "My models": the workspace's models (GET /api/models), newest first, each one click from
 * the builder. Opening one puts its spec in the builder and makes it the model Run uses,
 * weights and all (nothing is rebuilt).
 */

import { api } from "./api.js";
import { el, fmtInt, replace } from "./dom.js";

export class MyModels {
  /** ctx: {session, open(info), report(err)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.list = el("ul", { class: "my-models-list", id: "my-models-list" });
    replace(root, el("summary", { text: "My models" }), this.list);
    root.addEventListener("toggle", () => root.open && this.refresh());
  }

  async refresh() {
    replace(this.list, el("li", { class: "muted", text: "Loading…" }));
    let res;
    try {
      res = await api.listModels();
    } catch (err) {
      replace(this.list, el("li", { class: "error-text", text: err.message }));
      return;
    }
    const models = [...res.models].sort((a, b) => b.updated - a.updated);
    if (!models.length) {
      replace(this.list, el("li", { class: "muted", text: "None yet: Apply or Run builds one." }));
      return;
    }
    const items = models.map((m) => {
      const current = m.id === this.ctx.session.id;
      const text = `${m.name} · ${m.layers} layers · ${fmtInt(m.total_params)} params`;
      return el(
        "li",
        {},
        el("button", {
          type: "button",
          class: "btn btn-small btn-quiet my-model",
          dataset: { id: m.id },
          disabled: current,
          text: current ? `${text} (open)` : text,
          onclick: () => this.open(m.id),
        }),
      );
    });
    replace(
      this.list,
      items,
      el("li", { class: "muted", text: `${models.length} of ${res.limit} kept in this workspace.` }),
    );
  }

  async open(id) {
    try {
      this.ctx.open(await api.getModel(id));
      this.root.open = false;
    } catch (err) {
      this.ctx.report(err);
    }
  }
}
