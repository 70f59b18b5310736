/**
 * The page header's controls: the model's name, the weights seed, Apply, Run (and
 * Ctrl/Cmd+Enter) and the palette's fold button. `ctx` holds what they act on: `edited`,
 * `markDirty`, `apply` and `run`.
 */

const $ = (id) => document.getElementById(id);

export function bindHeader(store, ctx) {
  const { state } = store;
  const name = $("model-name");
  name.value = state.spec.name || "";
  const fit = () => (name.style.width = `${Math.max(8, name.value.length + 2)}ch`);
  fit();
  name.addEventListener("input", () => {
    fit();
    state.spec.name = name.value.trim();
    ctx.edited();
  });
  const seed = $("weights-seed");
  seed.value = String(state.seed);
  seed.addEventListener("input", () => {
    if (!/^\d+$/.test(seed.value)) return;
    store.update({ seed: Number(seed.value) });
    ctx.markDirty();
  });
  // the page's HTML has Apply and Run disabled until they do something: a click before the
  // scripts started was lost (a link opened and Run pressed at once)
  for (const [id, act] of [["apply-btn", ctx.apply], ["run-btn", ctx.run]]) {
    $(id).addEventListener("click", act);
    $(id).disabled = false;
  }
  const toggle = $("toggle-palette");
  const folded = () => document.body.classList.contains("no-palette");
  toggle.setAttribute("aria-expanded", String(!folded()));
  toggle.addEventListener("click", () => {
    const open = folded();
    store.update({ palette: open });
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("no-palette", !open);
  });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      e.preventDefault();
      ctx.run();
    }
  });
}
