/**
 * The effects lab page: six tabs (pooling, normalization, dropout, activations, losses,
 * Linear by hand), each a module that draws itself into its panel the first time it shows.
 * The page state (the tab and its controls) lives in the URL hash: #tab=dropout&p=0.4.
 */

import { installAccessPrompt } from "../access.js";
import { api } from "../api.js";
import { initBigType } from "../dom.js";
import { Tabs } from "../tabs.js";
import { createActivations, SCHEMA as ACT } from "./activations.js";
import { createDropout, SCHEMA as DROP } from "./dropout.js";
import { fromHash, toHash } from "./form.js";
import { createLinear, SCHEMA as LIN } from "./linear.js";
import { createLosses, SCHEMA as LOSS } from "./losses.js";
import { createNormalization, SCHEMA as NORM } from "./normalization.js";
import { createPooling, SCHEMA as POOL } from "./pooling.js";

const TABS = {
  pooling: [createPooling, POOL],
  normalization: [createNormalization, NORM],
  dropout: [createDropout, DROP],
  activations: [createActivations, ACT],
  losses: [createLosses, LOSS],
  linear: [createLinear, LIN],
};
const made = {};
let catalog = null;
// each experiment's choices and tutorial case, from the request schemas (GET /api/effects)
const choices = api.effectOptions();
choices.catch(() => {}); // reported by the tab that needs it

/** Fill a schema's empty option lists from the API's choices for its fields. */
function fillOptions(schema, info) {
  for (const spec of schema)
    if (spec.kind === "select" && !spec.options.length && info.options[spec.key])
      spec.options = info.options[spec.key].map(String);
}

let written = location.hash; // the hash this page wrote last (a change to it is someone's)

function writeHash(tab, values) {
  if (location.hash !== written) return; // a link pasted since: it wins (see hashchange)
  const params = new URLSearchParams({ tab, ...toHash(values) });
  history.replaceState(null, "", `#${params.toString()}`);
  written = location.hash;
}

/** Run a request for a tab: a busy note while it runs, the API's message when it fails. */
async function run(status, work) {
  status.textContent = "Computing…";
  status.dataset.kind = "busy";
  try {
    const result = await work();
    status.textContent = "";
    status.dataset.kind = "ok";
    return result;
  } catch (err) {
    status.textContent = err.message; // textContent: the server's words stay text
    status.dataset.kind = "error";
    return null;
  }
}

async function open(name, params) {
  if (!TABS[name]) return;
  const [create, schema] = TABS[name];
  if (!made[name]) {
    const panel = document.getElementById(`panel-${name}`);
    let info;
    try {
      if (name === "activations" && !catalog) catalog = await api.catalog();
      info = (await choices)[name];
    } catch (err) {
      const status = document.createElement("p");
      status.className = "fx-status";
      status.dataset.kind = "error";
      status.textContent = `The lab could not load its choices: ${err.message}`;
      panel.replaceChildren(status);
      return;
    }
    if (made[name]) return; // made while waiting
    fillOptions(schema, info);
    const values = { ...Object.fromEntries(params || []), ...fromHash(schema, params || new URLSearchParams()) };
    made[name] = create(panel, {
      values,
      run,
      catalog,
      info,
      onState: (v) => {
        if (tabs.current === name) writeHash(name, v);
      },
    });
    made[name].refresh();
  } else {
    writeHash(name, made[name].values());
  }
}

initBigType();
installAccessPrompt();
const tabOf = (params) => (TABS[params.get("tab")] ? params.get("tab") : "pooling");
const params = new URLSearchParams(location.hash.slice(1));
let pending = { name: tabOf(params), params }; // the hash's values for the tab shown next
const tabs = new Tabs(document.getElementById("fx-tabs"), new Set());
tabs.addEventListener("show", (e) => {
  const given = pending?.name === e.detail ? pending.params : null;
  pending = null;
  open(e.detail, given);
});
tabs.show(pending.name);

// A hash set by hand or by a script (#tab=losses, an edited value) is followed, as the
// playground does: the tab opens, rebuilt from the hash's values when it gives any.
window.addEventListener("hashchange", () => {
  if (location.hash === written) return;
  written = location.hash;
  const next = new URLSearchParams(location.hash.slice(1));
  const name = tabOf(next);
  if ([...next.keys()].some((k) => k !== "tab")) delete made[name];
  if (tabs.current === name) open(name, next);
  else {
    pending = { name, params: next };
    tabs.show(name);
  }
});
