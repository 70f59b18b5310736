/**
 * A layer's argument form, generated from its catalog entry (the JS knows no layer's args).
 *
 * Arg kinds: int, float, bool, choice, ints (an int or one per spatial dim, plus named
 * values such as "same"), int_list. `auto: true` adds an "auto" toggle (the size is read
 * from the layer before); `optional: true` lets the field be blank (None). Required args
 * and those set in the spec are shown; the rest wait under "more options".
 */

import { el, uid } from "./dom.js";

const INT_MAX = 2147483647;

function parseInts(text, arg) {
  const t = text.trim();
  if (!t) return { blank: true };
  if (arg.also && arg.also.includes(t)) return { value: t };
  const parts = t.split(/[\s,×x*]+/).filter(Boolean);
  if (!parts.every((p) => /^-?\d+$/.test(p))) {
    const named = arg.also ? ` or ${arg.also.map((a) => `"${a}"`).join(", ")}` : "";
    return { error: `whole numbers, like 3 or 3, 3${named}` };
  }
  const nums = parts.map(Number);
  if (arg.kind === "int_list") return { value: nums };
  if (nums.length === 1) return { value: nums[0] };
  if (arg.length && nums.length !== arg.length) {
    return { error: `one number, or ${arg.length} (one per dimension)` };
  }
  return { value: nums };
}

/** Parse what the user typed for `arg`: {value} | {blank: true} | {error: "…"}. */
export function parseArg(arg, text) {
  if (arg.kind === "ints" || arg.kind === "int_list") return parseInts(text, arg);
  const t = String(text).trim();
  if (!t) return { blank: true };
  const n = Number(t);
  if (!Number.isFinite(n)) return { error: "a number" };
  if (arg.kind === "int" && !Number.isInteger(n)) return { error: "a whole number" };
  return { value: n };
}

function show(value) {
  if (value === undefined || value === null) return "";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

function numberInput(arg, id) {
  const input = el("input", {
    id,
    type: "number",
    step: arg.kind === "int" ? "1" : "any",
    class: "arg-input",
  });
  if (arg.ge !== undefined) input.min = String(arg.ge);
  if (arg.le !== undefined && arg.le < INT_MAX) input.max = String(arg.le);
  return input;
}

/**
 * One labelled control for `arg` of a layer. onChange(name, value | undefined) is called
 * with the parsed value (undefined removes the arg: torch's default, or None if optional).
 */
function argField(arg, args, onChange) {
  const id = uid(`arg-${arg.name}`);
  const current = args[arg.name];
  const wrap = el("div", { class: "arg", dataset: { arg: arg.name } });
  const label = el("label", { for: id, class: "arg-label", title: arg.doc || "", text: arg.name });
  if (arg.required) label.append(el("span", { class: "req", "aria-hidden": "true", text: "*" }));
  wrap.append(label);

  if (arg.kind === "bool") {
    const box = el("input", { id, type: "checkbox", class: "arg-check" });
    box.checked = current !== undefined ? Boolean(current) : Boolean(arg.default);
    box.addEventListener("change", () => onChange(arg.name, box.checked));
    wrap.append(box);
    return wrap;
  }
  if (arg.kind === "choice") {
    const select = el("select", { id, class: "arg-input" });
    for (const c of arg.choices) select.append(el("option", { value: String(c), text: String(c) }));
    select.value = String(current ?? arg.default ?? arg.choices[0]);
    select.addEventListener("change", () => onChange(arg.name, select.value));
    wrap.append(select);
    return wrap;
  }

  const numeric = arg.kind === "int" || arg.kind === "float";
  const input = numeric
    ? numberInput(arg, id)
    : el("input", {
        id,
        type: "text",
        class: "arg-input",
        spellcheck: "false",
        autocomplete: "off",
      });
  if (arg.also) {
    const listId = uid("also");
    wrap.append(
      el(
        "datalist",
        { id: listId },
        arg.also.map((a) => el("option", { value: a })),
      ),
    );
    input.setAttribute("list", listId);
  }
  const hint = arg.optional ? "None" : show(arg.default);
  if (hint) input.placeholder = hint;
  input.value = current === "auto" ? "" : show(current);
  const problem = el("span", { class: "arg-problem", role: "alert" });
  const commit = () => {
    const parsed = parseArg(arg, input.value);
    input.setAttribute("aria-invalid", parsed.error ? "true" : "false");
    problem.textContent = parsed.error ? `Use ${parsed.error}.` : "";
    if (parsed.error) return;
    onChange(arg.name, parsed.blank ? undefined : parsed.value);
  };
  input.addEventListener("input", commit);
  wrap.append(input);

  if (arg.auto) {
    const autoId = uid("auto");
    const box = el("input", { id: autoId, type: "checkbox", class: "auto-check" });
    const resolved = el("span", { class: "auto-value", dataset: { autoFor: arg.name } });
    const sync = () => {
      input.disabled = box.checked;
      input.hidden = box.checked;
      resolved.hidden = !box.checked;
    };
    box.checked = current === "auto";
    box.addEventListener("change", () => {
      sync();
      if (box.checked) onChange(arg.name, "auto");
      else commit();
    });
    sync();
    wrap.append(
      resolved,
      el(
        "label",
        { for: autoId, class: "auto-label", title: `read ${arg.name} from the layer before` },
        box,
        "auto",
      ),
    );
  }
  wrap.append(problem);
  return wrap;
}

/** A layer's form: [the required and set args, the others folded in a <details> or null]. */
export function argForm(entry, layer, onChange) {
  const args = layer.args || {};
  const main = el("div", { class: "args" });
  const more = el("div", { class: "args" });
  for (const arg of entry.args) {
    const field = argField(arg, args, onChange);
    (arg.required || arg.name in args ? main : more).append(field);
  }
  const folded = more.childElementCount
    ? el(
        "details",
        { class: "more-args" },
        el("summary", { text: `more options (${more.childElementCount})` }),
        more,
      )
    : null;
  return [main, folded];
}
