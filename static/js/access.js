/**
 * The class access code: when the teacher has set one, a new workspace needs it. A modal
 * <dialog> asks for it (focus stays inside until it is answered).
 */

import { onAccessCode } from "./api.js";
import { el } from "./dom.js";

export function installAccessPrompt() {
  onAccessCode(
    (message) =>
      new Promise((resolve) => {
        const input = el("input", {
          type: "password",
          id: "access-code",
          autocomplete: "off",
          required: true,
        });
        const form = el(
          "form",
          { method: "dialog", class: "access-form" },
          el("h2", { text: "Class access code" }),
          el("p", { text: message }),
          el("label", { for: "access-code", class: "field-label", text: "Access code" }),
          input,
          el(
            "div",
            { class: "dialog-buttons" },
            el("button", { type: "submit", class: "btn btn-primary", text: "Continue" }),
          ),
        );
        const dialog = el(
          "dialog",
          { class: "access-dialog", "aria-labelledby": "access-title" },
          form,
        );
        form.querySelector("h2").id = "access-title";
        dialog.addEventListener("cancel", (e) => e.preventDefault()); // a workspace is needed
        form.addEventListener("submit", () => {
          dialog.remove();
          resolve(input.value.trim());
        });
        document.body.append(dialog);
        dialog.showModal();
        input.focus();
      }),
  );
}
