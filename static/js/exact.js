/**
 * Exact float32 values on demand for a run drawn from u8 payloads (one byte per value: right
 * for a colour, not for a number). A hover value, a printed cell, a prediction or a download
 * asks here: the run is asked again with "f32" for that one layer (or with no layer, for the
 * inputs and outputs), and the answer is used only when its bytes are the ones the u8 payload
 * was made from (its exact_crc32), so a model changed in between can never show other
 * numbers than those drawn. Payloads that came exact are decoded as they are.
 */

import { decodePayload, sameValues } from "./f16.js";

/** Where a payload sits in a run's answer. */
function pick(run, where) {
  if (where.kind === "output") return run.outputs[where.name];
  if (where.kind === "input") return run.inputs[where.name]?.tensor;
  const act = run.activations[where.name];
  return where.kind === "extra" ? act?.extras?.[where.key]?.tensor : act?.tensor;
}

export const STALE =
  "The model changed since this run, so its exact values are gone: run it again to see them.";

export class ExactValues {
  /** ask(capture): the run asked again with encoding "f32", capturing `capture`. */
  constructor(ask) {
    this.ask = ask;
    this.answers = new Map(); // capture -> Promise of the f32 answer
  }

  /** The exact decoded tensor of `payload`, found at `where` ({kind, name, key?}). */
  async get(payload, where) {
    if (payload.encoding !== "u8") return decodePayload(payload);
    const capture = where.kind === "act" || where.kind === "extra" ? [where.name] : "none";
    const key = JSON.stringify(capture);
    if (!this.answers.has(key)) {
      const answer = this.ask(capture);
      this.answers.set(key, answer);
      answer.catch(() => this.answers.delete(key)); // a failed request may be tried again
    }
    const exact = pick(await this.answers.get(key), where);
    if (!exact || !sameValues(exact, payload)) throw new Error(STALE);
    return decodePayload(exact);
  }
}
