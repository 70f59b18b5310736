/**
 * The playground page's entry: read the hash into the state, start building the model at
 * once (a link that runs on open needs no catalog to do so), load the catalog, then hand
 * everything to the App. Plotly (preloaded by the page) is started once the first run's maps
 * are painted (map_canvas.js), so that its start-up holds back neither the run nor them.
 */

import { installAccessPrompt } from "./access.js";
import { api } from "./api.js";
import { App } from "./app.js";
import { plotlyReady, warmUp } from "./charts.js";
import { initBigType } from "./dom.js";
import { ModelSession } from "./model.js";
import { lessonState } from "./train/lessons.js";
import { defaultState, readHash, Store } from "./state.js";

async function initialState(hash) {
  if (hash.state) return hash.state;
  const state = defaultState();
  if (hash.preset) {
    const p = await api.preset(hash.preset);
    Object.assign(state, { spec: p.spec, seed: p.seed, inputs: p.default_inputs });
  }
  const lesson = hash.lesson && lessonState(hash.lesson);
  if (lesson) {
    const p = lesson.lesson.preset && (await api.preset(lesson.lesson.preset));
    const spec = p ? p.spec : lesson.lesson.spec;
    Object.assign(state, { spec, seed: p ? p.seed : 0, train: lesson.train, tab: "train" });
    if (p) state.inputs = p.default_inputs;
  }
  if (hash.tab) state.tab = hash.tab;
  if (hash.autorun) state.autorun = true;
  return state;
}

async function main() {
  performance.mark("pg:boot");
  initBigType();
  installAccessPrompt();
  api.warmUp().catch(() => {}); // the workspace: the first request a run needs
  const catalog = api.catalog();
  const hash = await readHash();
  let notice = hash.error || null;
  let state;
  try {
    state = await initialState(hash);
  } catch (err) {
    state = defaultState();
    notice = err.message;
  }
  const store = new Store(state, hash.hide);
  const session = new ModelSession(store);
  // Build now, while the catalog loads: the model does not need it, and a link that runs on
  // open gets its first map sooner.
  const early = state.spec.layers.length ? session.apply() : null;
  early?.catch(() => {}); // reported by App.start
  const app = new App(store, await catalog, hash, session);
  app.start(notice, early);
  // Plotly's start-up is one long task on the main thread (0.3-0.9 s). Unless it ran while
  // the modules loaded (plotly_early.js), it starts once the run's maps are painted (a link
  // that runs on open; map_canvas.js paints them without Plotly), so that neither the
  // build's answer nor the run's waits behind it. Without a run to draw soon, a warm-up
  // figure then pays Plotly's first-figure costs before anyone is looking (with one, it
  // would only delay the real figures: bench_ui.py).
  const painted = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
  if (state.autorun) app.runShown.then(painted).then(() => plotlyReady().catch(() => {}));
  else plotlyReady().then(warmUp).catch(() => {});
  window.addEventListener("hashchange", () => {
    if (location.hash !== store.written) location.reload(); // another link pasted in this tab
  });
}

main();
