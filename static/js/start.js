/** The start page: only the large-type toggle; the cards are plain links rendered by Jinja. */
import { initBigType } from "./dom.js";

initBigType();
