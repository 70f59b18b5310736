/** The start page: the large-type toggle, and the training lessons' cards (from lessons.js). */
import { el, initBigType, replace } from "./dom.js";
import { LESSONS } from "./train/lessons.js";

initBigType();

const cards = document.getElementById("train-cards");
if (cards) {
  replace(
    cards,
    Object.entries(LESSONS).map(([name, lesson]) =>
      el(
        "li",
        { class: "card" },
        el(
          "a",
          { class: "card-link", href: `/playground#lesson=${name}`, dataset: { lesson: name } },
          el("span", { class: "card-section", text: lesson.title }),
          el("span", { class: "card-model", text: lesson.preset || lesson.spec.name }),
          el("span", { class: "card-blurb", text: lesson.blurb }),
          el("span", { class: "card-note", text: "trains in the Train tab" }),
        ),
      ),
    ),
  );
}
