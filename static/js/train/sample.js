/**
 * Dataset samples as model inputs: a sample read from the API with its label, the training's
 * transforms applied here in float32 (scale, normalize, pad, flatten: the same expressions as
 * models/datasets/transforms.py, each rounded to float32 as torch does), reshaped to the
 * model's input and sent as a "tensor" input maker.
 */

import { decodePayload } from "../f16.js";
import { f32Payload, trainApi } from "./api.js";

const f = Math.fround;

function pad(values, shape, size) {
  const [h, w] = shape.slice(-2);
  const lead = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const top = Math.floor((size - h) / 2);
  const left = Math.floor((size - w) / 2);
  const out = new Float32Array(lead * size * size);
  for (let c = 0; c < lead; c += 1)
    for (let r = 0; r < h; r += 1)
      for (let k = 0; k < w; k += 1)
        out[c * size * size + (r + top) * size + k + left] = values[c * h * w + r * w + k];
  return { values: out, shape: [...shape.slice(0, -2), size, size] };
}

/** Apply a TrainConfig's transforms to one sample ({values, shape}, no batch dimension). */
export function transform(sample, transforms, valueRange) {
  let { values, shape } = sample;
  for (const t of transforms || []) {
    if (t.kind === "scale" && valueRange) {
      const [lo, hi] = valueRange;
      values = values.map((v) => (lo === 0 ? f(v / hi) : f(f(v - lo) / (hi - lo))));
    } else if (t.kind === "normalize") {
      values = values.map((v) => f(f(v - (t.mean ?? 0)) / (t.std ?? 1)));
    } else if (t.kind === "pad") {
      ({ values, shape } = pad(values, shape, t.size ?? 32));
    } else if (t.kind === "flatten") {
      shape = [values.length];
    }
  }
  return { values, shape };
}

/**
 * The input maker for test sample `index` of the configured dataset, as `inputShape` reads it.
 * Returns {maker, label, className, image: {values, shape} (before transforms)}.
 */
export async function sampleInput(config, dataset, index, inputShape) {
  const s = await trainApi.sample(dataset.name, "test", index);
  const raw = decodePayload(s.tensor);
  const image = { values: raw.values, shape: raw.shape };
  let maker;
  let values = null;
  if (dataset.dtype === "int64") {
    maker = { kind: "tensor", data: Array.from(raw.values, Math.round) }; // token ids
  } else {
    const t = transform(image, config.transforms, dataset.value_range);
    const want = inputShape.reduce((a, b) => a * b, 1);
    const shape = want === t.values.length ? inputShape : [1, ...t.shape];
    maker = f32Payload(t.values, shape);
    values = t.values;
  }
  return { maker, values, label: s.label, className: s.class_name, image };
}
