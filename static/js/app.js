/**
 * The playground's controller: it holds the store (the one state object), the model
 * session and the views (palette, inputs, stack, run, results, inspect, code, share) and
 * wires them to each other and to the API. Views get small context objects, not the App.
 */

import { api, ApiError, serverUp, UNREACHABLE } from "./api.js";
import { CodeView } from "./code.js";
import { EditHistory } from "./history.js";
import { ExactValues } from "./exact.js";
import { debounce, fmtInt } from "./dom.js";
import { bindHeader } from "./header.js";
import { Inspector } from "./inspect.js";
import { InputsForm } from "./inputs_form.js";
import { MyModels } from "./my_models.js";
import { newLayer } from "./block.js";
import { initPalette } from "./palette.js";
import { Results } from "./results.js";
import { RunPanel, runningStatLayers } from "./run_panel.js";
import { gradientRequest } from "./run_gradients.js";
import { SharePanel } from "./share.js";
import { Stack } from "./stack.js";
import { Tabs } from "./tabs.js";
import { TrainView } from "./train/view.js";
import { Validator } from "./validate.js";
import { WhyView } from "./attribution/why.js";

const $ = (id) => document.getElementById(id);

export class App {
  constructor(store, catalog, hash, session) {
    this.store = store;
    this.catalog = catalog;
    this.entries = new Map(catalog.layers.map((e) => [e.type, e]));
    this.focus = hash.focus || store.state.focus; // the lesson's layer: shown after the first run
    this.lastRun = null;
    this.inputsJSON = null;
    // settles when the first run's maps are on screen (painted without Plotly), or when it
    // failed: playground.js starts Plotly then, so that its long start-up holds back neither
    // the run nor its painting
    this.runShown = new Promise((resolve) => (this.shownRun = resolve));
    this.session = session;
    this.validator = new Validator((r) => this.onValidated(r));
    const edited = () => this.edited();
    const selected = (name) => store.update({ focus: name });
    this.stack = new Stack($("stack"), {
      store,
      entries: this.entries,
      edited: (opts) => this.edited(opts),
      settle: () => this.history.snap(),
      jump: (n) => this.jump(n),
      selected,
    });
    this.inputsForm = new InputsForm($("model-inputs"), {
      store,
      edited,
      renamed: (a, b) => this.renamedInput(a, b),
    });
    this.runPanel = new RunPanel($("run-controls"), { store, changed: () => this.inputsChanged() });
    this.results = new Results($("results"), {
      selectBlock: (n) => this.selectBlock(n),
      toggleGradients: (on) => {
        store.update({ gradients: on });
        this.run(true);
      },
    });
    const visible = (id) => () => !$(id).hidden;
    const report = (err) => this.report(err);
    this.inspector = new Inspector($("inspect"), {
      store,
      session: this.session,
      visible: visible("view-inspect"),
      report,
      checkpoint: () => this.trainView?.runExtras().checkpoint ?? null, // the slider's step
    });
    this.codeView = new CodeView($("code"), {
      session: this.session,
      visible: visible("view-code"),
    });
    this.share = new SharePanel($("share"), {
      store,
      session: this.session,
      rebuild: () => this.apply({ fresh: true }),
    });
    this.why = new WhyView($("why"), {
      session: this.session,
      store,
      makers: () => this.runPanel.makers(),
      apply: () => this.apply(),
      report,
    });
    this.tabs = new Tabs(document.querySelector(".tabs"), store.hide);
    this.trainView = new TrainView($("train"), {
      store,
      session: this.session,
      apply: () => this.apply(),
      badge: (on) => ($("untrained-note").hidden = !on),
    });
    this.rerun = debounce(() => this.run(), 350);
    this.myModels = new MyModels($("my-models"), {
      session,
      open: (info) => this.openModel(info),
      report,
    });
    this.history = new EditHistory(
      () => JSON.stringify(store.state.spec),
      (json) => this.restoreSpec(json),
    );
  }

  /** Open one of the workspace's models: its spec in the builder, its weights for Run. */
  openModel(info) {
    this.history.snap();
    this.store.update({ spec: structuredClone(info.spec), seed: info.seed });
    Object.assign(this.session, { info, applied: JSON.stringify(info.spec), asSeeded: true });
    $("model-name").value = info.spec.name || "";
    $("weights-seed").value = String(info.seed);
    this.lastRun = null;
    this.renderBuilder();
    this.edited({ step: true });
    this.results.clear("Press Run to send the input through this model.");
    this.onApplied({ info, change: null });
  }

  /** Put an earlier spec back (undo/redo): the builder is redrawn from it. */
  restoreSpec(json) {
    this.store.state.spec = JSON.parse(json);
    $("model-name").value = this.store.state.spec.name || "";
    this.renderBuilder();
    this.edited();
  }

  bindHistory() {
    const undo = $("undo-btn");
    const redo = $("redo-btn");
    const sync = () => {
      undo.disabled = !this.history.canUndo;
      redo.disabled = !this.history.canRedo;
    };
    this.history.addEventListener("change", sync);
    undo.addEventListener("click", () => this.history.undo());
    redo.addEventListener("click", () => this.history.redo());
    document.addEventListener("keydown", (e) => {
      if (!(e.ctrlKey || e.metaKey) || !["z", "Z", "y"].includes(e.key)) return;
      const t = e.target;
      // in a text field, Ctrl+Z undoes the typing (the browser's own undo)
      if (t.matches?.("input:not([type=checkbox]):not([type=radio]), textarea")) return;
      e.preventDefault();
      if (e.key === "y" || e.shiftKey) this.history.redo();
      else this.history.undo();
    });
    sync();
  }

  /** early: the build started before the catalog came (a promise), or null. */
  start(notice, early) {
    const { state, hide } = this.store;
    if (state.autorun) this.run(); // first: it sends the run as soon as the model is built
    $("palette-panel").hidden = hide.has("palette");
    $("toggle-palette").hidden = hide.has("palette");
    $("builder-panel").hidden = hide.has("builder");
    // a narrow screen (a phone, a split window) starts with the palette folded away
    const narrow = matchMedia("(max-width: 50rem)").matches;
    document.body.classList.toggle("no-palette", hide.has("palette") || !state.palette || narrow);
    document.body.classList.toggle("no-builder", hide.has("builder"));
    initPalette($("palette"), $("palette-search"), this.catalog, {
      add: (entry) => this.stack.insert(newLayer(state.spec, entry)),
      drag: (entry) => (this.stack.dragNew = entry),
    });
    bindHeader(this.store, {
      edited: () => this.edited(),
      markDirty: () => this.markDirty(),
      apply: () => this.apply().catch((err) => this.report(err)),
      run: () => this.run(true),
    });
    this.bindHistory();
    this.renderBuilder();
    this.tabs.addEventListener("show", (e) => this.onTab(e.detail));
    this.tabs.show(state.tab);
    this.session.addEventListener("applied", (e) => this.onApplied(e.detail));
    this.results.clear(
      "Press Run to send the input through the model and see every layer's activation.",
    );
    if (notice) this.say(notice, "error");
    if (this.focus) this.stack.select(this.focus);
    if (early) {
      // the build answers with the same inference /api/validate would; a link that runs on
      // open waits for it, anything else asks /api/validate too (it answers sooner)
      if (!state.autorun) this.validator.schedule(state.spec, { immediate: true });
      if (!this.session.info) this.say("Building…", "busy");
      early.then(
        (info) =>
          this.shown !== info &&
          this.session.info === info &&
          this.onApplied({ info, change: null }),
        (err) => {
          this.report(err);
          this.validator.schedule(state.spec, { immediate: true });
        },
      );
    } else {
      this.validator.schedule(state.spec, { immediate: true });
    }
    this.store.save();
  }

  renderBuilder() {
    this.inputsForm.render();
    this.stack.render();
    this.syncRunPanel();
  }

  syncRunPanel() {
    const { spec } = this.store.state; // the inputs, and the layers the mode note names
    const json = JSON.stringify([spec.inputs, runningStatLayers(spec)]);
    if (json === this.inputsJSON) return;
    this.inputsJSON = json;
    this.runPanel.render();
  }

  /** step: a structural edit (add, move, remove), one undo step at once. */
  edited({ step = false } = {}) {
    if (step) this.history.snap();
    else this.history.record();
    $("undo-btn").disabled = false; // the snapshot comes once the edit settles
    this.validator.schedule(this.store.state.spec);
    this.store.save();
    this.syncRunPanel(); // only re-renders when the inputs (or BatchNorm layers) changed
    this.markDirty();
  }

  renamedInput(old, name) {
    const inputs = { ...this.store.state.inputs };
    if (old in inputs) {
      inputs[name] = inputs[old];
      delete inputs[old];
    }
    this.store.update({ inputs });
  }

  markDirty() {
    if (this.session.info && this.session.dirty())
      this.say("Changed: Apply (or Run) to rebuild the model.", "dirty");
    document.title = `${this.store.state.spec.name || "Model"} · PyTorch Model Playground`;
  }

  onValidated(result) {
    this.stack.feedback(result, $("spec-error"), $("totals"));
  }

  async apply(opts = {}) {
    this.say("Building…", "busy");
    try {
      const v = this.validator;
      if (v.last && !v.last.valid && v.lastJSON === JSON.stringify(this.store.state.spec)) {
        throw new ApiError(422, { error: v.last.error }); // known bad: no need to ask the server
      }
      return await this.session.apply(opts);
    } catch (err) {
      this.report(err);
      throw err;
    }
  }

  onApplied({ info, change, rebuilt = false }) {
    this.shown = info;
    if (this.session.applied === JSON.stringify(this.store.state.spec))
      this.onValidated({ valid: true, ...info.summary });
    let text = `${info.name}: ${fmtInt(info.summary.total_params)} parameters, built (v${info.version}, seed ${info.seed}).`;
    if (change && change.reinitialized.length)
      text += ` Re-initialized: ${change.reinitialized.join(", ")}.`;
    else if (change) text += " Every layer kept its weights.";
    if (rebuilt)
      text = `The server had let this model go (a workspace keeps only its newest models), so it was rebuilt from its spec and seed. ${text}`;
    this.say(text, "ok");
    this.inspector.refresh().catch((err) => this.report(err));
    this.codeView.refresh().catch((err) => this.report(err));
    if (!$("view-share").hidden) this.share.render();
  }

  async run(userAsked = false) {
    this.rerun.cancel();
    this.runSeq = (this.runSeq || 0) + 1;
    const seq = this.runSeq; // a newer run supersedes this one's answer
    const { state } = this.store;
    $("run-error").hidden = true;
    if (userAsked && this.tabs.current !== "run" && !this.store.hide.has("run"))
      this.tabs.show("run");
    try {
      if (this.session.dirty()) await this.apply();
      const body = {
        ...this.runPanel.request(),
        ...this.trainView.runExtras(), // the weights of the time slider's step
        ...gradientRequest(state), // the Run tab's "Gradients" toggle
      };
      this.say("Running…", "busy");
      const started = performance.now();
      const pending = this.session.withModel((id) => api.run(id, body));
      performance.mark("pg:run-sent");
      const res = await pending;
      if (seq !== this.runSeq) return;
      performance.mark("pg:run-answered");
      this.lastRun = res;
      this.stale(false);
      if (!state.autorun) this.store.update({ autorun: true }); // the link shows what was run
      const again = (capture) => ({ ...body, capture, encoding: "f32", stats: false });
      this.results.show(
        res,
        new ExactValues((capture) => this.session.withModel((id) => api.run(id, again(capture)))),
      );
      this.shownRun();
      this.say(
        `Ran in ${state.mode} mode: ${res.elapsed_ms.toFixed(1)} ms on the worker (the passes ${res.compute_ms.toFixed(1)} ms), ${Math.round(performance.now() - started)} ms round trip.`,
        "ok",
      );
      if (this.focus && this.results.scrollTo(this.focus)) this.focus = null;
    } catch (err) {
      if (seq === this.runSeq) this.report(err, true);
      this.shownRun(); // no run to wait for: the page may start Plotly
    }
  }

  inputsChanged() {
    if (this.lastRun) this.rerun();
  }

  jump(name) {
    this.stack.select(name, { scroll: false });
    if (this.store.hide.has("run")) return;
    this.tabs.show("run");
    if (!this.results.scrollTo(name))
      this.say(`Run the model to see ${name}'s activation.`, "info");
  }

  selectBlock(name) {
    this.stack.select(name)?.focus();
  }

  onTab(tab) {
    this.store.update({ tab });
    if (tab === "inspect") this.inspector.refresh().catch((err) => this.report(err));
    if (tab === "code") this.codeView.refresh().catch((err) => this.report(err));
    if (tab === "share") this.share.render();
    if (tab === "train") this.trainView.show().catch((err) => this.report(err));
    if (tab === "why") this.why.refresh().catch((err) => this.report(err));
  }

  say(text, kind = "info") {
    const s = $("model-status");
    s.textContent = text;
    s.dataset.kind = kind;
  }

  /** Grey the results out (they are from before the server went away), or not. */
  stale(on) {
    $("results").classList.toggle("stale", on);
    $("results").setAttribute("aria-disabled", String(on));
  }

  /** The server went away: wait for /healthz, then say so and do again what failed. */
  waitForServer(again) {
    this.stale(true);
    if (this.waiting) return;
    this.waiting = true;
    const poll = async () => {
      if (!(await serverUp())) {
        setTimeout(poll, 2000);
        return;
      }
      this.waiting = false;
      this.say("The server is back.", "ok");
      if (again) again();
      else this.stale(false);
    };
    setTimeout(poll, 1000);
  }

  report(err, inRun = false) {
    const message = err instanceof ApiError || err instanceof Error ? err.message : String(err);
    this.say(message, "error");
    if (err instanceof ApiError && err.code === UNREACHABLE)
      this.waitForServer(inRun && this.lastRun ? () => this.run() : null);
    if (err instanceof ApiError && err.layer) {
      this.stack.feedback({
        valid: false,
        error: { code: err.code, message, layer: err.layer, detail: err.detail },
        layers: this.validator.last?.layers || [],
      });
    }
    if (inRun) {
      const box = $("run-error");
      box.textContent = message;
      box.hidden = false;
    }
  }
}
