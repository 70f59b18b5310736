/**
 * A drawing pad for a digit: white strokes on black, like MNIST. It hands back a PNG at the
 * input's own H×W (small enough to ride in a share link), and can redraw a saved PNG.
 */

import { el } from "./dom.js";

const SIZE = 224;

export class DrawPad {
  constructor(onChange, label = "Drawing pad") {
    this.onChange = onChange;
    this.canvas = el("canvas", {
      width: String(SIZE),
      height: String(SIZE),
      class: "draw-pad",
      role: "img",
      "aria-label": `${label}: draw a digit with the mouse or a finger`,
    });
    this.ctx = this.canvas.getContext("2d");
    this.drawing = false;
    this.clear(false);
    this.canvas.addEventListener("pointerdown", (e) => this.start(e));
    this.canvas.addEventListener("pointermove", (e) => this.move(e));
    this.canvas.addEventListener("pointerup", () => this.end());
    this.canvas.addEventListener("pointercancel", () => this.end());
    this.canvas.addEventListener("lostpointercapture", () => this.end());
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [((e.clientX - r.left) / r.width) * SIZE, ((e.clientY - r.top) / r.height) * SIZE];
  }

  start(e) {
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.drawing = true;
    this.last = this.point(e);
    this.stroke(this.last);
  }

  move(e) {
    if (!this.drawing) return;
    this.stroke(this.point(e));
  }

  stroke([x, y]) {
    const c = this.ctx;
    c.strokeStyle = "#fff";
    c.lineWidth = SIZE / 11;
    c.lineCap = "round";
    c.lineJoin = "round";
    c.beginPath();
    c.moveTo(this.last[0], this.last[1]);
    c.lineTo(x + 0.01, y);
    c.stroke();
    this.last = [x, y];
  }

  end() {
    if (!this.drawing) return;
    this.drawing = false;
    this.onChange();
  }

  clear(notify = true) {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, SIZE, SIZE);
    if (notify) this.onChange();
  }

  /** The drawing as PNG base64 (no data: prefix), scaled to width × height. */
  toPNG(width, height) {
    const small = el("canvas", { width: String(width), height: String(height) });
    const c = small.getContext("2d");
    c.imageSmoothingQuality = "high";
    c.drawImage(this.canvas, 0, 0, width, height);
    return small.toDataURL("image/png").split(",", 2)[1];
  }

  /** Show a saved PNG (scaled up, pixelated) on the pad. */
  load(pngBase64) {
    return showPNG(this.canvas, pngBase64);
  }
}

/** A canvas the size of the pad, for showing an image (not for drawing). */
export function previewCanvas(label) {
  const canvas = el("canvas", {
    width: String(SIZE),
    height: String(SIZE),
    class: "draw-pad preview",
    role: "img",
    "aria-label": label,
  });
  const c = canvas.getContext("2d");
  c.fillStyle = "#000";
  c.fillRect(0, 0, SIZE, SIZE);
  return canvas;
}

/** Draw a PNG (base64) on a canvas, scaled up with hard pixel edges. */
export async function showPNG(canvas, pngBase64) {
  const bytes = Uint8Array.from(atob(pngBase64), (ch) => ch.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const c = canvas.getContext("2d");
  c.imageSmoothingEnabled = false;
  c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
}

/**
 * A File (PNG/JPEG) -> PNG base64 scaled to width × height, transparent pixels on white
 * (as the server does). createImageBitmap needs no data: or blob: URL, so a strict CSP holds.
 */
export async function fileToPNG(file, width, height) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new Error("That file is not an image this browser can read (use PNG or JPEG).");
  }
  const canvas = el("canvas", { width: String(width), height: String(height) });
  const c = canvas.getContext("2d");
  c.fillStyle = "#fff";
  c.fillRect(0, 0, width, height);
  c.imageSmoothingQuality = "high";
  c.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return canvas.toDataURL("image/png").split(",", 2)[1];
}
