/** Code: the model exported as a readable nn.Module class, with copy and download. */

import { api } from "./api.js";
import { el, replace } from "./dom.js";

/** Copy text: the Clipboard API where allowed (https, localhost), else a hidden textarea. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = el("textarea", { value: text, class: "sr-only", "aria-hidden": "true" });
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

export class CodeView {
  /** ctx: {session, visible()} */
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.loaded = null;
  }

  async refresh() {
    const info = this.ctx.session.info;
    if (!info) {
      replace(this.root, el("p", { class: "muted", text: "Apply the model to see its code." }));
      return;
    }
    const key = `${info.id}:${info.version}`;
    if (this.loaded === key || !this.ctx.visible()) return;
    this.loaded = key;
    let res;
    try {
      res = await this.ctx.session.withModel((id) => api.code(id));
    } catch (err) {
      this.loaded = null; // try again next time
      throw err;
    }
    const said = el("span", { class: "copy-status", role: "status" });
    const copy = el("button", {
      type: "button",
      class: "btn",
      id: "copy-code",
      text: "Copy code",
      onclick: async () => {
        said.textContent = (await copyText(res.code))
          ? "Copied."
          : "Copy failed: select the text instead.";
      },
    });
    const download = el("button", {
      type: "button",
      class: "btn",
      text: "Download .py",
      onclick: () => {
        const url = URL.createObjectURL(new Blob([res.code], { type: "text/x-python" }));
        const a = el("a", { href: url, download: `${res.class_name.toLowerCase()}.py` });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 1000);
      },
    });
    replace(
      this.root,
      el(
        "div",
        { class: "code-bar" },
        el("span", {
          class: "muted",
          text: `class ${res.class_name}(nn.Module): paste it into a notebook or a .py file.`,
        }),
        copy,
        download,
        said,
      ),
      el(
        "pre",
        {
          class: "code",
          id: "code-text",
          tabindex: "0",
          "aria-label": `${res.class_name} in Python`,
        },
        el("code", { text: res.code }),
      ),
    );
  }
}
