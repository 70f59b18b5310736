/**
 * Live feedback: the spec goes to /api/validate 250 ms after the last edit; only the answer
 * to the latest request is shown (an older one arriving late is dropped).
 */

import { api, ApiError } from "./api.js";

export class Validator {
  constructor(onResult, delay = 250) {
    this.onResult = onResult;
    this.delay = delay;
    this.seq = 0;
    this.timer = null;
    this.last = null;
    this.pending = null;
  }

  /** Validate `spec` after the delay (or now with immediate=true). */
  schedule(spec, { immediate = false } = {}) {
    clearTimeout(this.timer);
    const body = JSON.parse(JSON.stringify(spec));
    this.pending = new Promise((resolve) => {
      const go = () => this.check(body).then(resolve);
      if (immediate) go();
      else this.timer = setTimeout(go, this.delay);
    });
    return this.pending;
  }

  async check(spec) {
    this.seq += 1;
    const mine = this.seq;
    let result;
    try {
      result = await api.validate(spec);
    } catch (err) {
      const error =
        err instanceof ApiError ? err : { code: "network", message: String(err.message || err) };
      result = {
        valid: false,
        error: { code: error.code, message: error.message, layer: error.layer || null },
        layers: [],
      };
    }
    if (mine !== this.seq) return this.last;
    this.last = result;
    this.lastJSON = JSON.stringify(spec); // the spec this answer is about
    this.onResult(result);
    return result;
  }
}
