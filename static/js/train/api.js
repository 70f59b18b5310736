/**
 * The training routes, as the Train tab uses them: datasets, options, trainings and their
 * commands, checkpoints, runs at a checkpoint, convolution by hand and a 2-D set's points.
 */

import { requestJSON as request } from "../api.js";

const enc = encodeURIComponent;
const T = (id, tid) => `/api/models/${enc(id)}/trainings/${enc(tid)}`;

export const trainApi = {
  datasets: () => request("GET", "/api/datasets", undefined, { auth: false }),
  options: () => request("GET", "/api/training/options", undefined, { auth: false }),
  sample: (name, split, index) =>
    request("GET", `/api/datasets/${enc(name)}/samples/${split}/${index}`, undefined, {
      auth: false,
    }),
  points: (name, split) =>
    request("GET", `/api/datasets/${enc(name)}/points/${split}`, undefined, { auth: false }),
  start: (id, config) => request("POST", `/api/models/${enc(id)}/trainings`, config),
  get: (id, tid) => request("GET", T(id, tid)),
  command: (id, tid, verb) => request("POST", `${T(id, tid)}/${verb}`),
  checkpoints: (id, tid) => request("GET", `${T(id, tid)}/checkpoints`),
  restore: (id, tid, step) => request("POST", `${T(id, tid)}/checkpoints/${step}/restore`),
  run: (id, body) => request("POST", `/api/models/${enc(id)}/run`, body),
  convByHand: (id, body) => request("POST", `/api/models/${enc(id)}/conv_by_hand`, body),
  eventsURL: (id, tid, after) => `${T(id, tid)}/events?after=${after}`,
};

/** Float32 values as the API's f32 payload (little-endian, base64). */
export function f32Payload(values, shape) {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return { kind: "tensor", encoding: "f32", shape, data: btoa(bin) };
}
