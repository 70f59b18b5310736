/**
 * A run's results: the outputs (class scores as bars, one tag per word for a tagger), the
 * inputs, and one card per layer with its activation, its extras (LSTM h_n/c_n, attention
 * per head), statistics, histogram and downloads. Grids of maps are painted at once on
 * canvases (map_canvas.js) as soon as the run is shown, without Plotly; Plotly's figures are
 * drawn lazily, one at a time, as their cards come into view, replacing the paintings. A
 * figure on screen has data-drawn (its layer's first: the "pg:drawn:<layer>" mark; the first
 * layer's: "pg:first-activation"); once Plotly has drawn it (hover, zoom, colour bar), also
 * data-interactive (the "pg:interactive:<layer>" mark).
 * Maps come as u8 (for colour); what shows a number (hover, cell text, a prediction, a
 * download) takes the exact float32 values from exact.js, on first use.
 */

import { purge } from "./charts.js";
import { downloadButtons } from "./download.js";
import { el, fmtShape, replace } from "./dom.js";
import { ExactValues } from "./exact.js";
import { unpaint } from "./map_canvas.js";
import { decodePayload } from "./f16.js";
import { histogram, statsLine } from "./hist.js";
import { outputReading } from "./outputs.js";
import { gradientSection, gradientSummary, gradientToggle } from "./run_gradients.js";
import { planView } from "./tensor_view.js";

/**
 * The layers whose last dimension is one score per class label: the model's tail after the
 * last layer of another width (a tagger's hidden2tag and log_softmax, LeNet's fc3), so their
 * columns are named DET, NN, V … and not "feature 0, 1, 2".
 */
function classLayers(activations, labels) {
  const names = Object.keys(activations);
  if (!labels) return new Set();
  const width = (n) => {
    const shape = activations[n].tensor.true_shape || activations[n].tensor.shape;
    return shape[shape.length - 1];
  };
  let start = names.length;
  while (start > 0 && width(names[start - 1]) === labels.length) start -= 1;
  return new Set(names.slice(start));
}

export class Results {
  /** ctx: {selectBlock(name)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.gen = 0;
    this.queue = [];
    this.running = false;
    this.firstDrawn = false;
    this.observer = new IntersectionObserver((entries) => this.onVisible(entries), {
      rootMargin: "300px 0px",
    });
  }

  clear(message = "") {
    this.gen += 1;
    this.queue = [];
    this.observer.disconnect();
    for (const fig of this.root.querySelectorAll(".js-plotly-plot")) purge(fig);
    replace(this.root, message ? el("p", { class: "muted", text: message }) : null);
  }

  /** Show a run; exact: its ExactValues (exact.js), needed when it holds u8 payloads. */
  show(run, exact = null) {
    this.clear();
    this.exact = exact || new ExactValues(() => Promise.reject(new Error("No exact values.")));
    const tokens = Object.values(run.inputs).find((i) => i.tokens)?.tokens || null;
    const labels = run.labels || null;
    const outs = el(
      "section",
      { class: "results-section", "aria-label": "Outputs" },
      el("h3", { text: "Output" }),
    );
    for (const [name, payload] of Object.entries(run.outputs)) {
      const stats = run.activations[name]?.stats || null;
      outs.append(this.outputCard(name, payload, stats, labels, tokens));
    }
    const acts = el(
      "section",
      { class: "results-section", "aria-label": "Activations" },
      el("h3", { text: "Inputs and activations, layer by layer" }),
    );
    for (const [name, inp] of Object.entries(run.inputs)) acts.append(this.inputCard(name, inp));
    const classy = classLayers(run.activations, labels);
    for (const [name, act] of Object.entries(run.activations))
      acts.append(this.card(name, act, tokens, classy.has(name) ? labels : null));
    replace(
      this.root,
      el("p", {
        class: "run-meta",
        text: `Ran in ${run.mode} mode · ${run.elapsed_ms.toFixed(1)} ms on the worker (the passes ${run.compute_ms.toFixed(1)} ms)`,
      }),
      this.ctx.toggleGradients ? gradientToggle(run.gradients, this.ctx.toggleGradients) : null,
      gradientSummary(run.gradients, labels),
      outs,
      acts,
    );
    performance.mark("pg:results-shown");
    this.paintAll();
    for (const fig of this.root.querySelectorAll(".fig")) this.observer.observe(fig);
  }

  /** Paint every grid of maps at once (canvases: no Plotly needed), marked as drawn. */
  paintAll() {
    const figs = [...this.root.querySelectorAll(".fig")];
    const widths = figs.map((fig) => fig.clientWidth); // one layout, before any painting
    figs.forEach((fig, i) => {
      try {
        const plan = fig.plan();
        fig.planned = plan; // decoded once: Plotly's figure draws the same plan
        if (!plan.paint) return;
        plan.paint(fig, widths[i]);
        this.drawn(fig, plan);
      } catch {
        unpaint(fig); // Plotly draws it (or says why it cannot)
      }
    });
  }

  /** The marks of a figure now on screen (painted or drawn by Plotly), and its notes. */
  drawn(fig, plan) {
    if (fig.dataset.drawn) return;
    for (const note of plan.notes) fig.parentElement.append(el("p", { class: "note", text: note }));
    fig.dataset.drawn = plan.kind;
    const layer = fig.closest(".act-card")?.dataset.layer;
    if (layer && !performance.getEntriesByName(`pg:drawn:${layer}`).length)
      performance.mark(`pg:drawn:${layer}`); // each layer's first map (bench_ui.py)
    if (!this.firstDrawn && fig.closest(".act-card:not(.input-card)")) {
      this.firstDrawn = true;
      performance.mark("pg:first-activation");
    }
  }

  /** Scroll to a layer's (or an input's) card and flash it; false when there is none. */
  scrollTo(name) {
    const card = this.root.querySelector(`#act-${CSS.escape(name)}`);
    if (!card) return false;
    card.scrollIntoView({ block: "start" });
    this.pin(card);
    card.classList.remove("flash");
    void card.offsetWidth; // restart the animation
    card.classList.add("flash");
    card.focus({ preventScroll: true });
    return true;
  }

  /**
   * Keep `card` at the top while the figures above it are drawn (they grow the page),
   * until the user scrolls, types or clicks.
   */
  pin(card) {
    this.pinned = card;
    const scroller = card.closest(".panel") || window;
    const release = () => {
      this.pinned = null;
      for (const ev of ["wheel", "keydown", "pointerdown", "touchstart"])
        scroller.removeEventListener(ev, release);
    };
    for (const ev of ["wheel", "keydown", "pointerdown", "touchstart"])
      scroller.addEventListener(ev, release, { passive: true });
    setTimeout(release, 4000);
  }

  figure(payload, opts, where) {
    const fig = el("div", {
      class: "fig",
      role: "figure",
      "aria-label": `${opts.title}: ${fmtShape(payload.shape)}`,
    });
    fig.plan = (tensor = null) => planView(tensor || decodePayload(payload), opts);
    fig.approx = payload.encoding === "u8";
    fig.exact = () => this.exact.get(payload, where);
    return fig;
  }

  /** where: the payload's place in the run ({kind: act|extra|input|output, name, key?}). */
  body(title, payload, given, opts, where) {
    const stats = given || null; // the server's, exact: inputs and layers alike
    const fig = this.figure(payload, { ...opts, stats, title }, where);
    const side = el(
      "div",
      { class: "act-side" },
      histogram(stats?.histogram, { label: `Histogram of ${title}` }),
      statsLine(stats),
      downloadButtons(title, () => this.exact.get(payload, where), stats),
    );
    return el("div", { class: "act-body" }, el("div", { class: "fig-col" }, fig), side);
  }

  outputCard(name, payload, stats, labels, tokens) {
    const card = el(
      "article",
      { class: "out-card", id: `out-${name}` },
      el(
        "h4",
        {},
        el("span", { class: "mono", text: name }),
        el("span", { class: "shape", text: fmtShape(payload.shape) }),
      ),
    );
    const where = { kind: "output", name };
    if (payload.encoding !== "u8") {
      const reading = outputReading(decodePayload(payload), labels, tokens);
      if (reading) card.append(reading);
    } else if (labels) {
      // a prediction is an argmax: read it from the exact values, never from 256 levels
      const slot = el("div", { class: "reading" });
      card.append(slot);
      this.exact
        .get(payload, where)
        .then((t) => replace(slot, outputReading(t, labels, tokens)))
        .catch((err) => replace(slot, el("p", { class: "note", text: err.message })));
    }
    card.append(this.body(name, payload, stats, { labels, tokens, mapName: "ch" }, where));
    return card;
  }

  inputCard(name, inp) {
    const card = el(
      "article",
      { class: "act-card input-card", id: `act-${name}`, tabindex: "-1" },
      el(
        "header",
        { class: "act-head" },
        el("h4", { class: "mono", text: name }),
        el("span", { class: "badge", text: "input" }),
        el("span", { class: "shape", text: fmtShape(inp.tensor.shape) }),
      ),
    );
    if (inp.tokens) {
      const words = el("ol", { class: "token-list" });
      const ids = decodePayload(inp.tensor).values;
      inp.tokens.forEach((w, i) =>
        words.append(
          el(
            "li",
            {},
            el("span", { class: "tok-word", text: w }),
            el("span", { class: "tok-id", text: String(Math.round(ids[i])) }),
          ),
        ),
      );
      card.append(words);
      return card;
    }
    const where = { kind: "input", name };
    card.append(this.body(name, inp.tensor, inp.stats, { mapName: "ch" }, where));
    if (inp.gradient) card.append(gradientSection(this, name, inp.gradient, { mapName: "ch" }));
    return card;
  }

  card(name, act, tokens, labels = null) {
    const head = el(
      "header",
      { class: "act-head" },
      el("h4", { class: "mono", text: name }),
      el("span", { class: "badge", text: act.type }),
      el("span", { class: "shape", text: fmtShape(act.tensor.true_shape || act.tensor.shape) }),
      el("button", {
        type: "button",
        class: "btn btn-small btn-quiet",
        text: "in stack",
        "aria-label": `Select ${name} in the stack`,
        onclick: () => this.ctx.selectBlock(name),
      }),
    );
    const card = el(
      "article",
      { class: "act-card", id: `act-${name}`, tabindex: "-1", dataset: { layer: name } },
      head,
      this.body(name, act.tensor, act.stats, { tokens, labels }, { kind: "act", name }),
      act.gradient ? gradientSection(this, name, act.gradient, { tokens, labels }) : null,
    );
    for (const [key, extra] of Object.entries(act.extras || {})) {
      const attention = key.startsWith("attn");
      const title = `${name} · ${key}`;
      card.append(
        el(
          "section",
          { class: "extra", dataset: { extra: key } },
          el(
            "h5",
            {},
            el("span", { class: "mono", text: key }),
            el("span", { class: "shape", text: fmtShape(extra.tensor.shape) }),
            attention
              ? el("span", { class: "muted", text: "one map per head: rows attend to columns" })
              : null,
          ),
          this.body(
            title,
            extra.tensor,
            extra.stats,
            { tokens, mapName: attention ? "head" : "ch" },
            { kind: "extra", name, key },
          ),
        ),
      );
    }
    return card;
  }

  onVisible(entries) {
    const seen = entries.filter((e) => e.isIntersecting);
    // what is on screen first, then what is just above or below it
    const offscreen = (e) =>
      e.boundingClientRect.bottom < 0 || e.boundingClientRect.top > innerHeight ? 1 : 0;
    seen.sort((a, b) => offscreen(a) - offscreen(b));
    for (const entry of seen) {
      this.observer.unobserve(entry.target);
      this.queue.push({ fig: entry.target, gen: this.gen });
    }
    this.pump();
  }

  /** Draw a u8 figure again from its exact values (its hover said "loading"). */
  async upgrade(fig) {
    if (fig.dataset.exact) return;
    fig.dataset.exact = "loading";
    try {
      const plan = fig.plan(await fig.exact());
      if (!fig.isConnected) return;
      await plan.draw(fig);
      fig.dataset.exact = "true";
    } catch (err) {
      fig.dataset.exact = "failed";
      fig.parentElement?.append(el("p", { class: "note", text: err.message }));
    }
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    while (this.queue.length) {
      const { fig, gen } = this.queue.shift();
      if (gen !== this.gen || !fig.isConnected) continue;
      try {
        if (!performance.getEntriesByName("pg:first-draw-start").length)
          performance.mark("pg:first-draw-start");
        const plan = fig.planned || fig.plan();
        fig.planned = null;
        await plan.draw(fig);
        unpaint(fig); // Plotly's figure lies under the painting: nothing moves
        this.drawn(fig, plan);
        fig.dataset.interactive = plan.kind;
        if (fig.approx && fig.on) fig.on("plotly_hover", () => this.upgrade(fig));
        if (this.pinned?.isConnected) this.pinned.scrollIntoView({ block: "start" });
        const layer = fig.closest(".act-card")?.dataset.layer;
        if (layer && !performance.getEntriesByName(`pg:interactive:${layer}`).length)
          performance.mark(`pg:interactive:${layer}`); // Plotly drew it (bench_ui.py)
      } catch (err) {
        unpaint(fig);
        replace(
          fig,
          el("p", { class: "error-text", text: `This view could not be drawn: ${err.message}` }),
        );
      }
      await new Promise((r) => setTimeout(r, 0)); // let the page breathe between figures
    }
    this.running = false;
  }
}
