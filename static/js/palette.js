/**
 * The layer palette: every catalog entry grouped by category, filtered as you type (type,
 * torch class, doc). A click (or Enter) adds the layer below the selected block.
 */

import { el, replace } from "./dom.js";

function matches(entry, words) {
  const hay = `${entry.type} ${entry.torch} ${entry.doc} ${entry.category}`.toLowerCase();
  return words.every((w) => hay.includes(w));
}

export function initPalette(root, search, catalog, onAdd) {
  const draw = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    const groups = [];
    for (const [cat, title] of Object.entries(catalog.categories)) {
      const entries = catalog.layers.filter((e) => e.category === cat && matches(e, words));
      if (!entries.length) continue;
      const list = el("ul", { class: "palette-list", role: "list" });
      for (const entry of entries) {
        list.append(
          el(
            "li",
            {},
            el(
              "button",
              {
                type: "button",
                class: "palette-item",
                dataset: { type: entry.type },
                title: `${entry.torch}: ${entry.doc}`,
                onclick: () => onAdd(entry),
              },
              el("span", { class: "palette-name", text: entry.type }),
              el("span", { class: "palette-doc", text: entry.doc }),
            ),
          ),
        );
      }
      const details = el(
        "details",
        { class: "palette-group", open: true },
        el(
          "summary",
          {},
          el("span", { text: title }),
          el("span", { class: "count", text: String(entries.length) }),
        ),
        list,
      );
      groups.push(details);
    }
    if (!groups.length) groups.push(el("p", { class: "muted", text: "No layer matches." }));
    replace(root, groups);
  };
  search.addEventListener("input", draw);
  draw();
}
