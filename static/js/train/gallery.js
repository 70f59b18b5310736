/**
 * A gallery of misclassified test samples (image sets): the first GALLERY test images run as
 * one batch at the slider's step; each one the model gets wrong is drawn small with its true
 * and predicted class, and clicking it makes it the sample shown above.
 */

import { el, replace } from "../dom.js";
import { decodePayload } from "../f16.js";
import { f32Payload, trainApi } from "./api.js";
import { sampleInput } from "./sample.js";

const GALLERY = 64;
const SHOWN = 16;

/** A grey image of a sample (C×H×W, first channel) as a small canvas. */
export function thumbnail({ values, shape }) {
  const [, h, w] = shape;
  const canvas = el("canvas", { width: w, height: h, class: "thumb" });
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < h * w; i += 1) {
    lo = Math.min(lo, values[i]);
    hi = Math.max(hi, values[i]);
  }
  for (let i = 0; i < h * w; i += 1) {
    const v = Math.round((255 * (values[i] - lo)) / (hi - lo || 1));
    img.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

export class Gallery {
  /** ctx: {store, session, dataset(), inputShape(), pick(index)} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.key = null;
    this.samples = null;
  }

  async load(dataset, config, inputShape) {
    const key = JSON.stringify([dataset.name, config.transforms, inputShape]);
    if (this.key === key) return this.samples;
    const out = [];
    for (let i = 0; i < Math.min(GALLERY, dataset.test_size); i += 8) {
      const idx = Array.from({ length: Math.min(8, dataset.test_size - i) }, (_, k) => i + k);
      out.push(...(await Promise.all(idx.map((j) => sampleInput(config, dataset, j, inputShape)))));
    }
    this.key = key;
    this.samples = out;
    return out;
  }

  /** ref: the checkpoint {training, step} or null for the current weights. */
  async show(ref) {
    const dataset = this.ctx.dataset();
    const id = this.ctx.session.id;
    this.root.hidden = !dataset || dataset.sample_shape.length !== 3 || !id;
    if (this.root.hidden) return;
    const { state } = this.ctx.store;
    const inputShape = this.ctx.inputShape();
    const samples = await this.load(dataset, state.train.config, inputShape);
    const per = samples[0].values.length;
    const all = new Float32Array(per * samples.length);
    samples.forEach((s, i) => all.set(s.values, i * per));
    const shape = [samples.length, ...inputShape.slice(1)];
    const name = Object.keys(state.spec.inputs)[0];
    const body = { inputs: { [name]: f32Payload(all, shape) }, capture: "none", encoding: "f32", stats: false };
    if (ref) body.checkpoint = ref;
    const out = decodePayload(Object.values((await trainApi.run(id, body)).outputs)[0]);
    const n = out.shape[out.shape.length - 1];
    const wrong = [];
    samples.forEach((s, i) => {
      const logits = Array.from(out.values.subarray(i * n, (i + 1) * n));
      const pred = logits.indexOf(Math.max(...logits));
      if (pred !== s.label) wrong.push({ i, s, pred });
    });
    const names = dataset.classes;
    replace(
      this.root,
      el("h4", { text: `Misclassified: ${wrong.length} of the first ${samples.length} test samples` }),
      el(
        "div",
        { class: "gallery", id: "gallery" },
        wrong.slice(0, SHOWN).map(({ i, s, pred }) =>
          el(
            "button",
            { type: "button", class: "gallery-item", dataset: { index: i }, title: `test sample ${i}`, onclick: () => this.ctx.pick(i) },
            thumbnail(s.image),
            el("span", { class: "gallery-cap", text: `${names[s.label]} → ${names[pred]}` }),
          ),
        ),
      ),
    );
    this.root.dataset.wrong = String(wrong.length);
  }
}
