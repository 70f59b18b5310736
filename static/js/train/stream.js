/**
 * A training's Server-Sent Events, read with fetch (the route needs the Authorization header,
 * which EventSource cannot send). Events are handed over in batches (see schedule), so the
 * page keeps up with the stream at its full rate. A dropped connection resumes
 * after the last event seen (?after=N) until a final status arrives.
 */

import { authHeaders } from "../api.js";

const FINAL = new Set(["done", "failed", "cancelled", "interrupted"]);
const FLUSH_MS = 250;

export class EventStream {
  /** onBatch(events): events are {id, kind, data}; onEnd(): the training ended. */
  constructor(url, { onBatch, onEnd, after = 0 }) {
    this.url = url; // a function after => URL
    this.onBatch = onBatch;
    this.onEnd = onEnd;
    this.last = after;
    this.pending = [];
    this.frame = null;
    this.flushed = 0;
    this.cost = 0; // ms the last batch took to draw
    this.drawing = false;
    this.ended = false;
    this.closed = false;
    this.finished = false;
    this.ctrl = null;
  }

  start() {
    this.loop().catch(() => {});
    return this;
  }

  close() {
    this.closed = true;
    this.ctrl?.abort();
  }

  async loop() {
    let failures = 0;
    while (!this.closed && !this.finished) {
      try {
        await this.readOnce();
        failures = 0;
      } catch (err) {
        if (this.closed) return;
        failures += 1;
        if (failures > 20) throw err;
      }
      if (!this.finished && !this.closed)
        await new Promise((r) => setTimeout(r, Math.min(2000, 200 * (failures + 1))));
    }
  }

  async readOnce() {
    this.ctrl = new AbortController();
    const res = await fetch(this.url(this.last), {
      headers: { ...(await authHeaders()), Accept: "text/event-stream" },
      signal: this.ctrl.signal,
    });
    if (!res.ok) throw new Error(`The event stream answered ${res.status}.`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        this.parse(buf.slice(0, cut));
        buf = buf.slice(cut + 2);
      }
    }
  }

  parse(block) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("id:")) id = Number(line.slice(3).trim());
      else if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    if (id === null || !data.length || id <= this.last) return; // a ping, or seen already
    this.last = id;
    const event = { id, kind, data: JSON.parse(data.join("\n")) };
    this.pending.push(event);
    if (kind === "status" && FINAL.has(event.data.status)) this.finished = true;
    this.schedule();
  }

  schedule() {
    if (this.frame !== null || this.drawing) return;
    // One batch at a time, drawn in an animation frame, and the next one no sooner than
    // FLUSH_MS or three times as long as the last batch took to draw: Plotly redraws a whole
    // trace per extendTraces, so the main thread stays mostly free at any stream rate.
    const gap = Math.max(FLUSH_MS, 3 * this.cost);
    const wait = Math.max(0, this.flushed + gap - performance.now());
    const flush = async () => {
      this.frame = null;
      const started = performance.now();
      const batch = this.pending;
      this.pending = [];
      this.drawing = true;
      try {
        if (batch.length) await this.onBatch(batch);
      } finally {
        this.drawing = false;
        this.flushed = performance.now();
        this.cost = this.flushed - started;
      }
      if (this.pending.length) this.schedule();
      else if (this.finished && !this.ended) {
        this.ended = true;
        this.onEnd?.();
      }
    };
    this.frame = setTimeout(() => {
      if (document.hidden) flush();
      else requestAnimationFrame(flush);
    }, wait);
  }
}
