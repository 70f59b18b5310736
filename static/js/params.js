/**
 * The parameter table: one row per named_parameters() entry (name, shape, count,
 * requires_grad, statistics) grouped by layer, with a freeze toggle per parameter and per
 * layer (PATCH .../parameters/{name}), totals, and the buffers. A click on a name opens
 * its values in the parameter view.
 */

import { el, fmtBytes, fmtInt, fmtNum, fmtShape } from "./dom.js";

/** ctx: {toggle(name, flag), open(name), selected} */
export function parameterTable(table, ctx) {
  const body = el("tbody");
  const byLayer = new Map();
  for (const row of table.rows) {
    if (!byLayer.has(row.layer)) byLayer.set(row.layer, []);
    byLayer.get(row.layer).push(row);
  }
  for (const [layer, rows] of byLayer) {
    const all = rows.every((r) => r.requires_grad);
    const none = rows.every((r) => !r.requires_grad);
    const layerBox = el("input", {
      type: "checkbox",
      checked: all,
      "aria-label": `Train every parameter of ${layer}`,
      dataset: { layerToggle: layer },
    });
    layerBox.indeterminate = !all && !none;
    layerBox.addEventListener("change", () => ctx.toggle(layer, layerBox.checked));
    const count = rows.reduce((a, r) => a + r.count, 0);
    body.append(
      el(
        "tr",
        { class: "group-row" },
        el("th", { scope: "rowgroup", colspan: "2", class: "mono", text: layer }),
        el("td", { class: "num", text: fmtInt(count) }),
        el(
          "td",
          {},
          el(
            "label",
            { class: "grad-toggle" },
            layerBox,
            all ? "trainable" : none ? "frozen" : "mixed",
          ),
        ),
        el("td", { colspan: "4" }),
      ),
    );
    for (const r of rows) {
      const box = el("input", {
        type: "checkbox",
        checked: r.requires_grad,
        "aria-label": `requires_grad of ${r.name}`,
        dataset: { paramToggle: r.name },
      });
      box.addEventListener("change", () => ctx.toggle(r.name, box.checked));
      const open = el("button", {
        type: "button",
        class: "link-button mono",
        text: r.name,
        "aria-label": `Show the values of ${r.name}`,
        onclick: () => ctx.open(r.name),
      });
      const tr = el(
        "tr",
        { dataset: { param: r.name }, class: r.name === ctx.selected ? "selected" : "" },
        el("th", { scope: "row" }, open),
        el("td", { class: "mono", text: fmtShape(r.shape) }),
        el("td", { class: "num", text: fmtInt(r.count) }),
        el(
          "td",
          {},
          el(
            "label",
            { class: "grad-toggle" },
            box,
            el("span", { class: "grad-value mono", text: r.requires_grad ? "True" : "False" }),
          ),
        ),
        el("td", { class: "num", text: fmtNum(r.mean) }),
        el("td", { class: "num", text: fmtNum(r.std) }),
        el("td", { class: "num", text: fmtNum(r.min) }),
        el("td", { class: "num", text: fmtNum(r.max) }),
      );
      body.append(tr);
    }
  }
  const t = table.totals;
  const foot = el(
    "tfoot",
    {},
    el(
      "tr",
      {},
      el("th", {
        scope: "row",
        colspan: "2",
        text: `Total: ${t.tensors} tensors, ${fmtBytes(t.bytes)}`,
      }),
      el("td", { class: "num", text: fmtInt(t.count) }),
      el("td", {
        colspan: "5",
        class: "totals-cell",
        text: `${fmtInt(t.trainable)} trainable · ${fmtInt(t.frozen)} frozen`,
      }),
    ),
  );
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      ["name", "shape", "count", "requires_grad", "mean", "std", "min", "max"].map((h) =>
        el("th", { scope: "col", text: h }),
      ),
    ),
  );
  const parts = [
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "data-table param-table", id: "param-table" },
        el("caption", { text: "model.named_parameters()" }),
        head,
        body,
        foot,
      ),
    ),
  ];
  if (table.buffers?.length) {
    const rows = table.buffers.map((b) =>
      el(
        "tr",
        {},
        el("td", { class: "mono", text: b.name }),
        el("td", { class: "mono", text: fmtShape(b.shape) }),
        el("td", { class: "num", text: fmtInt(b.count) }),
      ),
    );
    parts.push(
      el(
        "details",
        { class: "buffers" },
        el("summary", {
          text: `Buffers (${table.buffers.length}): state that is saved but not trained`,
        }),
        el(
          "table",
          { class: "data-table" },
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ["name", "shape", "count"].map((h) => el("th", { scope: "col", text: h })),
            ),
          ),
          el("tbody", {}, rows),
        ),
      ),
    );
  }
  return parts;
}
