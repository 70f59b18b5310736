/**
 * Downloads of tensor values: JSON ({name, shape, dtype, values as nested lists, stats}) or
 * CSV (one row per index of the leading dimensions, the last dimension across). The values
 * are the run's exact float32 ones (a run drawn from u8 fetches them on the click, see
 * exact.js); a map downsampled for display says so (JSON: a note; CSV: "_downsampled" in the
 * file name).
 */

import { el } from "./dom.js";
import { nested } from "./f16.js";

function save(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** The values as CSV: the leading indices, then the last dimension's values. */
export function toCSV(tensor) {
  const shape = tensor.shape.length ? tensor.shape : [1];
  const last = shape[shape.length - 1];
  const lead = shape.slice(0, -1);
  const header = [
    ...lead.map((_, i) => `i${i}`),
    ...Array.from({ length: last }, (_, j) => `v${j}`),
  ];
  const lines = [header.join(",")];
  const rows = tensor.values.length / last;
  for (let r = 0; r < rows; r += 1) {
    const idx = [];
    let rest = r;
    for (let d = lead.length - 1; d >= 0; d -= 1) {
      idx.unshift(rest % lead[d]);
      rest = Math.floor(rest / lead[d]);
    }
    const vals = Array.from(tensor.values.subarray(r * last, (r + 1) * last), (v) => String(v));
    lines.push([...idx, ...vals].join(","));
  }
  return `${lines.join("\n")}\n`;
}

/**
 * Two buttons, JSON and CSV, that download a decoded tensor as `name`. source: the tensor,
 * or a function giving (a promise of) it when asked.
 */
export function downloadButtons(name, source, stats) {
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, "_");
  const problem = el("span", { class: "note", role: "status" });
  const withTensor = (fn) => async () => {
    problem.textContent = "";
    try {
      fn(await (typeof source === "function" ? source() : source));
    } catch (err) {
      problem.textContent = err.message;
    }
  };
  const json = withTensor((tensor) => {
    const body = {
      name,
      shape: tensor.shape,
      dtype: tensor.dtype,
      note: tensor.trueShape
        ? `downsampled for display from ${tensor.trueShape.join("×")}; POST /api/models/{id}/run with "downsample": false gives every value`
        : "exact float32 values, as torch computed them",
      values: nested(tensor.values, tensor.shape),
      stats,
    };
    save(`${safe}.json`, JSON.stringify(body), "application/json");
  });
  // the CSV has no room for a note: its name says it is downsampled
  const csv = withTensor((tensor) =>
    save(`${safe}${tensor.trueShape ? "_downsampled" : ""}.csv`, toCSV(tensor), "text/csv"),
  );
  return el(
    "span",
    { class: "downloads" },
    el("button", {
      type: "button",
      class: "btn btn-small",
      onclick: json,
      "aria-label": `Download ${name} as JSON`,
      text: "JSON",
    }),
    el("button", {
      type: "button",
      class: "btn btn-small",
      onclick: csv,
      "aria-label": `Download ${name} as CSV`,
      text: "CSV",
    }),
    problem,
  );
}
