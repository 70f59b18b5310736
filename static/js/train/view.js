/**
 * The Train tab: the configuration form, the controls (train, pause/resume, one step, cancel,
 * reset to step 0), status with counters and the time left, the live charts, the decision
 * boundary of 2-D sets, and the model at a chosen step (the time slider). It is built the
 * first time the tab opens; the training's events arrive by stream.js, batched per frame.
 */

import { ApiError } from "../api.js";
import { el, replace } from "../dom.js";
import { decodePayload } from "../f16.js";
import { trainApi } from "./api.js";
import { AtStep } from "./at_step.js";
import { Boundary } from "./boundary.js";
import { TrainForm, suggestTransforms } from "./form.js";
import { thumbnail } from "./gallery.js";
import { LiveCharts } from "./live_charts.js";
import { HistChart } from "./hist_chart.js";
import { EventStream } from "./stream.js";

const FINAL = new Set(["done", "failed", "cancelled", "interrupted"]);

/** A first configuration for a model that has none: a dataset its input can read. */
export function defaultConfig(spec, datasets) {
  const input = Object.values(spec.inputs)[0] || { shape: [1, 2] };
  const shape = input.shape;
  let name = "spiral";
  if (input.dtype === "int64") name = "pos_tagging";
  else if (shape.length === 4 && shape[2] >= 28) name = "fashion_mnist";
  else if (shape.length === 4) name = "digits";
  else if (shape.length === 2 && shape[1] === 64) name = "digits";
  else if (shape.length === 2 && shape[1] === 784) name = "fashion_mnist";
  const dataset = datasets.find((d) => d.name === name && d.available) || datasets.find((d) => d.available);
  return {
    dataset: dataset.name,
    transforms: suggestTransforms(dataset, shape),
    optimizer: { name: "adam", args: { lr: 0.001 } },
    loss: { name: dataset.task === "tagging" ? "NLLLoss" : "CrossEntropyLoss", args: {} },
    batch_size: dataset.name === "pos_tagging" ? 1 : 32,
    steps: 200,
    eval_every: 50,
    seed: 0,
  };
}

export class TrainView {
  /** ctx: {store, session, report(err), apply()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.training = null; // the TrainingPublic being shown
    this.stream = null;
    this.steps = [];
    this.built = false;
  }

  /** The tab opened: build the view once (datasets and options come from the API). */
  async show() {
    if (this.built) return;
    this.built = true;
    const [{ datasets }, options] = await Promise.all([trainApi.datasets(), trainApi.options()]);
    this.datasets = datasets;
    const { store } = this.ctx;
    if (!store.state.train?.config) store.update({ train: { config: defaultConfig(store.state.spec, datasets), at: null, sample: 0 } });
    this.status = el("p", { id: "train-status", class: "train-status", role: "status", "aria-live": "polite", text: "Not trained yet: the model is at its initialization." });
    this.error = el("div", { id: "train-error", class: "run-error", role: "alert", hidden: true });
    const btn = (id, text, fn, primary = false) => el("button", { type: "button", id, class: primary ? "btn btn-primary" : "btn", text, onclick: () => fn().catch((err) => this.fail(err)) });
    this.buttons = {
      train: btn("train-start", "Train", () => this.start(), true),
      pause: btn("train-pause", "Pause", () => this.command(this.training?.status === "paused" ? "resume" : "pause")),
      step: btn("train-step", "One step", () => this.command("step")),
      cancel: btn("train-cancel", "Stop", () => this.command("cancel")),
      reset: btn("train-reset", "Reset to step 0", () => this.reset()),
    };
    const formRoot = el("div", { class: "train-form", id: "train-form" });
    this.form = new TrainForm(formRoot, {
      store,
      datasets,
      options,
      changed: () => (this.error.hidden = true),
      datasetChanged: () => this.preview().catch((err) => this.fail(err)),
    });
    this.form.render();
    this.previewRoot = el("div", { class: "train-preview", id: "train-preview" });
    const chartsRoot = el("div", { class: "train-charts", id: "train-charts" });
    this.charts = new LiveCharts(chartsRoot);
    this.hist = new HistChart(el("div", { class: "train-hist", id: "train-hist" }));
    this.boundary = new Boundary(el("div", { id: "train-boundary", class: "train-boundary", hidden: true }));
    const atRoot = el("section", { class: "at-step", id: "at-step", "aria-label": "The model at a step" });
    this.atStep = new AtStep(atRoot, {
      store,
      session: this.ctx.session,
      dataset: () => this.dataset(),
      inputShape: () => Object.values(store.state.spec.inputs)[0].shape,
      training: () => this.training,
      report: (err) => this.fail(err),
      moved: (step) => this.moved(step),
      badge: (on) => this.ctx.badge?.(on),
    });
    replace(
      this.root,
      formRoot,
      this.previewRoot,
      el("div", { class: "train-controls" }, Object.values(this.buttons)),
      this.status,
      this.error,
      el("div", { class: "train-live" }, this.boundary.root, chartsRoot),
      this.hist.root,
      el("h3", { text: "The model at a step" }),
      atRoot,
    );
    this.sync();
    this.atStep.syncBadge();
    await this.preview();
  }

  /** A few training images of the dataset, or a 2-D set's points under the (untrained) boundary. */
  async preview() {
    const d = this.dataset();
    if (!d || this.training) return;
    replace(this.previewRoot);
    if (d.sample_shape.length === 3) {
      const samples = await Promise.all([...Array(8).keys()].map((i) => trainApi.sample(d.name, "train", i)));
      const items = samples.map((s) => {
        const t = decodePayload(s.tensor);
        return el("figure", { class: "gallery-item" }, thumbnail({ values: t.values, shape: t.shape }), el("figcaption", { class: "gallery-cap", text: s.class_name ?? String(s.label) }));
      });
      replace(this.previewRoot, el("div", { class: "gallery" }, items));
    }
    await this.boundary.reset(d);
    if (this.ctx.session.id && !this.ctx.session.dirty()) await this.boundary.update(this.ctx.session.id, this.inputName(), null);
  }

  dataset() {
    const name = this.ctx.store.state.train?.config?.dataset;
    return this.datasets?.find((d) => d.name === name) || null;
  }

  inputName() {
    return Object.keys(this.ctx.store.state.spec.inputs)[0];
  }

  fail(err) {
    this.error.textContent = err instanceof ApiError || err instanceof Error ? err.message : String(err);
    this.error.hidden = false;
  }

  sync() {
    const s = this.training?.status;
    const live = s && !FINAL.has(s);
    this.buttons.train.disabled = Boolean(live);
    this.buttons.pause.disabled = !live;
    this.buttons.pause.textContent = s === "paused" ? "Resume" : "Pause";
    this.buttons.step.disabled = s !== "paused";
    this.buttons.cancel.disabled = !live;
    this.buttons.reset.disabled = !this.training || Boolean(live);
  }

  async start() {
    this.error.hidden = true;
    this.stream?.close();
    const { session, store } = this.ctx;
    if (session.dirty()) await this.ctx.apply();
    const config = store.state.train.config;
    const body = JSON.parse(JSON.stringify(config));
    for (const k of ["steps", "epochs", "eval_every"]) if (body[k] === null || body[k] === undefined) delete body[k];
    // histograms about 40 times in the run (recording reads the weights, changes nothing)
    if (!body.record) body.record = { histograms_every: body.steps ? Math.max(1, Math.ceil(body.steps / 40)) : 10 };
    this.training = await trainApi.start(session.id, body);
    this.began = performance.now();
    this.steps = [];
    this.atStep.setSteps([]);
    const dataset = this.dataset();
    await this.boundary.reset(dataset); // first: it decides the charts' width
    await this.charts.reset(dataset.task === "classification" || dataset.task === "tagging" ? dataset.classes : null);
    await this.hist.reset();
    this.sync();
    this.say();
    const { id } = this.training;
    this.stream = new EventStream((after) => trainApi.eventsURL(session.id, id, after), {
      onBatch: (events) => this.onEvents(events),
      onEnd: () => this.onEnd().catch((err) => this.fail(err)),
    }).start();
  }

  onEvents(events) {
    const t = this.training;
    for (const { kind, data } of events) {
      if (kind === "step") {
        t.step = data.step;
        t.epoch = data.epoch;
      } else if (kind === "eval") this.lastEval = data;
      else if (kind === "status") {
        t.status = data.status;
        if (data.error) this.fail(new Error(data.error));
      } else if (kind === "checkpoint") this.steps.push(data.step);
    }
    const drawn = this.charts
      .append(events)
      .then(() => this.hist.append(events))
      .catch((err) => this.fail(err));
    if (events.some((e) => e.kind === "checkpoint")) {
      this.atStep.setSteps([...this.steps]);
      const step = this.steps[this.steps.length - 1];
      this.boundary.update(this.ctx.session.id, this.inputName(), { training: t.id, step }).catch((err) => this.fail(err));
    }
    this.sync();
    this.say();
    return drawn; // the stream waits for it before handing over the next batch
  }

  say() {
    const t = this.training;
    if (!t) return;
    const parts = [t.status, `step ${t.step ?? 0} of ${t.total_steps}`, `epoch ${t.epoch ?? 0}`];
    if (this.lastEval?.test_accuracy !== undefined) parts.push(`test accuracy ${(this.lastEval.test_accuracy * 100).toFixed(1)} %`);
    if (this.lastEval) parts.push(`test loss ${this.lastEval.test_loss.toFixed(4)}`);
    if (t.status === "running" && t.step > 0) {
      const left = ((performance.now() - this.began) / t.step) * (t.total_steps - t.step);
      parts.push(`about ${Math.ceil(left / 1000)} s left`);
    }
    this.status.textContent = parts.join(" · ");
    this.status.dataset.status = t.status;
  }

  async onEnd() {
    const { session, store } = this.ctx;
    this.training = await trainApi.get(session.id, this.training.id);
    const { checkpoints } = await trainApi.checkpoints(session.id, this.training.id);
    this.steps = checkpoints.map((c) => c.step);
    const at = store.state.train.at;
    if (at !== null && at !== undefined && this.steps.includes(at)) {
      this.atStep.current = at;
      this.atStep.setSteps(this.steps, { follow: false });
    } else this.atStep.setSteps(this.steps);
    this.sync();
    this.say();
    this.root.dataset.trained = this.training.status;
    await this.boundary.update(session.id, this.inputName(), this.atStep.checkpointRef());
    await this.atStep.show();
  }

  async command(verb) {
    this.training = { ...this.training, ...(await trainApi.command(this.ctx.session.id, this.training.id, verb)) };
    this.sync();
    this.say();
  }

  /** Back to step 0: the model's weights become the initial ones again. */
  async reset() {
    await trainApi.restore(this.ctx.session.id, this.training.id, 0);
    this.atStep.current = 0;
    this.atStep.setSteps(this.steps, { follow: false });
    this.moved(0);
    await this.atStep.show();
  }

  moved(step) {
    const train = this.ctx.store.state.train;
    train.at = step === this.steps[this.steps.length - 1] ? null : step;
    this.ctx.store.update({ train });
    if (this.training) this.boundary.update(this.ctx.session.id, this.inputName(), { training: this.training.id, step }).catch((err) => this.fail(err));
  }

  /** For the Run tab: run the weights of the step on the time slider. */
  runExtras() {
    const ref = this.training && this.atStep.current !== undefined ? this.atStep.checkpointRef() : null;
    return ref ? { checkpoint: ref } : {};
  }
}
