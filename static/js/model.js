/**
 * The server-side model behind the builder. The first Apply creates it (POST, with the
 * weights seed); later ones replace its spec (PUT: layers whose name, type and args are
 * unchanged keep their weights, the rest are re-initialized). A new seed, or "rebuild",
 * makes a fresh model, so its weights are exactly build(spec, seed), as a share link gets.
 */

import { api, ApiError } from "./api.js";

/** The workspace holds as many models as it may (the API's code and limit, not its words). */
function workspaceFull(err) {
  return err.code === "limit_exceeded" && err.detail?.limit_key === "max_models_per_workspace";
}

export class ModelSession extends EventTarget {
  constructor(store) {
    super();
    this.store = store;
    this.info = null; // the last ModelPublic
    this.applied = null; // JSON of the builder spec the model was built from
    this.asSeeded = true; // weights == build(spec, seed)?
    this.busy = null;
  }

  get id() {
    return this.info?.id ?? null;
  }

  /** Does the builder differ from the built model? */
  dirty() {
    const s = this.store.state;
    return !this.info || this.applied !== JSON.stringify(s.spec) || this.info.seed !== s.seed;
  }

  /** Build or update the model from the builder's spec; resolves to the model info. */
  apply({ fresh = false, rebuilt = false } = {}) {
    if (this.busy)
      return this.busy.then(() =>
        this.dirty() || fresh ? this.apply({ fresh, rebuilt }) : this.info,
      );
    this.busy = this.doApply(fresh, rebuilt).finally(() => {
      this.busy = null;
    });
    return this.busy;
  }

  /**
   * fn(id) on the built model. When the server no longer has it (a workspace keeps its
   * newest models; older ones go), rebuild it from the spec and seed, then call fn again.
   */
  async withModel(fn) {
    const id = this.id;
    try {
      return await fn(id);
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== "model_not_found") throw err;
      if (this.id === id) await this.apply({ fresh: true, rebuilt: true });
      return fn(this.id);
    }
  }

  async doApply(fresh, rebuilt) {
    const { spec, seed } = this.store.state;
    const json = JSON.stringify(spec);
    const body = JSON.parse(json);
    let info;
    let change = null;
    if (!this.info || fresh || this.info.seed !== seed) {
      info = await this.create(body, seed, !rebuilt); // a rebuilt model's old one is gone
      this.asSeeded = true;
    } else {
      try {
        info = await api.replaceModel(this.info.id, body);
        change = { kept: info.kept || [], reinitialized: info.reinitialized || [] };
        if (change.kept.length) this.asSeeded = this.asSeeded && this.prefixKept(info);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 404) throw err;
        info = await this.create(body, seed); // the server forgot it (restart, eviction)
        this.asSeeded = true;
      }
    }
    this.info = info;
    this.applied = json;
    performance.mark("pg:model-built");
    this.dispatchEvent(new CustomEvent("applied", { detail: { info, change, rebuilt } }));
    return info;
  }

  /**
   * After a PUT the kept layers hold their old weights. They equal build(spec, seed)'s when
   * every layer before them is kept too (the seeded random stream is the same up to there).
   */
  prefixKept(info) {
    const kept = new Set(info.kept || []);
    const params = new Map(info.summary.layers.map((l) => [l.name, l.params]));
    let stillPrefix = true;
    for (const layer of info.spec.layers) {
      if (!params.get(layer.name)) continue; // no weights: draws nothing from the seed
      if (!kept.has(layer.name)) stillPrefix = false;
      else if (!stillPrefix) return false;
    }
    return true;
  }

  async create(spec, seed, dropOld = true) {
    const old = dropOld ? this.info?.id : null;
    let info;
    try {
      info = await api.createModel(spec, seed);
    } catch (err) {
      if (!(err instanceof ApiError) || !workspaceFull(err)) throw err;
      await this.makeRoom();
      info = await api.createModel(spec, seed);
    }
    if (old) api.deleteModel(old).catch(() => {});
    return info;
  }

  /** The workspace is full: drop its least recently updated model (not ours). */
  async makeRoom() {
    const { models } = await api.listModels();
    const others = models
      .filter((m) => m.id !== this.info?.id)
      .sort((a, b) => a.updated - b.updated);
    if (others.length) await api.deleteModel(others[0].id);
  }
}
