/**
 * Small DOM helpers. Text goes in through textContent only, never innerHTML, so a user's
 * string (a layer name, a label, a sentence) can never become markup.
 */

let counter = 0;

/** A unique id for label/control pairs: uid("arg") -> "arg-7". */
export function uid(prefix) {
  counter += 1;
  return `${prefix}-${counter}`;
}

/**
 * Build an element. props: class, text, dataset, on<event> listeners, DOM properties
 * (checked, disabled, value …) and attributes; children: nodes or strings (as text).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "value") continue; // set as a property once the children (options) exist
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (typeof value !== "string" && key in node) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  if (props.value !== undefined && props.value !== null) node.value = String(props.value);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of node with the given children. */
export function replace(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A labelled control: <label><span>text</span>control</label>. */
export function field(label, control, { hint, inline = false } = {}) {
  return el(
    "label",
    { class: inline ? "field field-inline" : "field" },
    el("span", { class: "field-label", text: label }),
    control,
    hint ? el("span", { class: "field-hint", text: hint }) : null,
  );
}

const INT = new Intl.NumberFormat("en-US");

/** 81290 -> "81,290". */
export function fmtInt(n) {
  return n === null || n === undefined ? "—" : INT.format(n);
}

/** [1, 6, 28, 28] -> "1×6×28×28"; [] -> "scalar". */
export function fmtShape(shape) {
  return shape && shape.length ? shape.join("×") : "scalar";
}

/** 18816 -> "18.4 KiB". */
export function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** 235200 -> "235 k"; used with a FLOPs unit. */
export function fmtSI(n) {
  if (n === null || n === undefined) return "—";
  const units = ["", " k", " M", " G", " T"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i += 1;
  }
  return `${i === 0 ? v : v.toPrecision(3)}${units[i]}`;
}

/** A float for a table cell: 4 significant digits, exponent for very small or large. */
export function fmtNum(x) {
  if (x === null || x === undefined) return "—";
  if (typeof x === "string") return x;
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(2);
  return String(Number(x.toPrecision(4)));
}

/** Call fn at most once per `ms`, with the last arguments (a trailing debounce). */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Apply the large-type preference (kept in localStorage, not in the share link). */
export function initBigType() {
  const key = "playground.bigType";
  const button = document.getElementById("big-type");
  const apply = (on) => {
    document.documentElement.classList.toggle("big-type", on);
    if (button) button.setAttribute("aria-pressed", String(on));
  };
  apply(localStorage.getItem(key) === "1");
  button?.addEventListener("click", () => {
    const on = !document.documentElement.classList.contains("big-type");
    localStorage.setItem(key, on ? "1" : "0");
    apply(on);
    // the boxes around the charts changed size, the window did not: charts drawn with
    // Plotly's `responsive` re-lay out on a window resize, so announce one
    window.dispatchEvent(new Event("resize"));
  });
}

const ICONS = {
  up: "M8 3l-5 5h3v5h4V8h3z",
  down: "M8 13l5-5h-3V3H6v5H3z",
  copy: "M5 1h8a1 1 0 0 1 1 1v9h-2V3H5zM2 4h8a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H2a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v7h6V6z",
  close: "M3.5 2L8 6.5 12.5 2 14 3.5 9.5 8l4.5 4.5-1.5 1.5L8 9.5 3.5 14 2 12.5 6.5 8 2 3.5z",
};

/** A 16×16 SVG icon (decorative: the button around it carries the label). */
export function icon(name) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "14");
  svg.setAttribute("height", "14");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", ICONS[name]);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** 235200 -> "235 kFLOPs"; 0 -> "0 FLOPs". */
export function fmtFlops(n) {
  const s = fmtSI(n);
  return /[a-zA-Z]$/.test(s) ? `${s}FLOPs` : `${s} FLOPs`;
}
