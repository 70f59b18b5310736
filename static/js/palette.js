/**
 * The layer palette: every catalog entry grouped by category; while searching, one list of
 * the matches, best first (a type that starts with the words, then one that holds them,
 * then the torch class, then the doc). A click, Enter on the item, or Enter in the search
 * (the best match) adds the layer below the selected block; an item can also be dragged
 * into the stack.
 */

import { el, replace } from "./dom.js";

/** How well an entry matches the words: 0 best … 3, or null for no match. */
function score(entry, words) {
  const type = entry.type.toLowerCase();
  const hay = `${entry.type} ${entry.torch} ${entry.doc} ${entry.category}`.toLowerCase();
  if (!words.every((w) => hay.includes(w))) return null;
  if (type.startsWith(words[0])) return 0;
  if (words.every((w) => type.includes(w))) return 1;
  if (words.every((w) => entry.torch.toLowerCase().includes(w))) return 2;
  return 3;
}

/** ctx: {add(entry), drag(entry | null)} — drag tells the stack what is being dragged. */
export function initPalette(root, search, catalog, ctx) {
  const item = (entry) => {
    const button = el(
      "button",
      {
        type: "button",
        class: "palette-item",
        draggable: "true",
        dataset: { type: entry.type },
        title: `${entry.torch}: ${entry.doc} (click, or drag into the stack)`,
        onclick: () => ctx.add(entry),
      },
      el("span", { class: "palette-name", text: entry.type }),
      el("span", { class: "palette-doc", text: entry.doc }),
    );
    button.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/plain", entry.type);
      e.dataTransfer.effectAllowed = "copy";
      ctx.drag(entry);
    });
    button.addEventListener("dragend", () => ctx.drag(null));
    return el("li", {}, button);
  };
  const group = (title, entries, open = true) =>
    el(
      "details",
      { class: "palette-group", open },
      el(
        "summary",
        {},
        el("span", { text: title }),
        el("span", { class: "count", text: String(entries.length) }),
      ),
      el("ul", { class: "palette-list", role: "list" }, entries.map(item)),
    );
  let best = [];
  const draw = () => {
    const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length) {
      const ranked = catalog.layers
        .map((entry, i) => ({ entry, i, s: score(entry, words) }))
        .filter((r) => r.s !== null)
        .sort((a, b) => a.s - b.s || a.i - b.i);
      best = ranked.map((r) => r.entry);
      replace(
        root,
        best.length
          ? group("Matches, best first", best)
          : el("p", { class: "muted", text: "No layer matches." }),
      );
      return;
    }
    best = [];
    const groups = Object.entries(catalog.categories)
      .map(([cat, title]) => [title, catalog.layers.filter((e) => e.category === cat)])
      .filter(([, entries]) => entries.length)
      .map(([title, entries]) => group(title, entries));
    replace(root, groups);
  };
  search.addEventListener("input", draw);
  search.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !best.length) return;
    e.preventDefault();
    ctx.add(best[0]); // Enter in the search: the best match
  });
  draw();
}
