/**
 * A training's Server-Sent Events, read with fetch (the route needs the Authorization header,
 * which EventSource cannot send). Events are handed over in batches, one batch per animation
 * frame, so the page keeps up with the stream at its full rate. A dropped connection resumes
 * after the last event seen (?after=N) until a final status arrives.
 */

import { authHeaders } from "../api.js";

const FINAL = new Set(["done", "failed", "cancelled", "interrupted"]);

export class EventStream {
  /** onBatch(events): events are {id, kind, data}; onEnd(): the training ended. */
  constructor(url, { onBatch, onEnd, after = 0 }) {
    this.url = url; // a function after => URL
    this.onBatch = onBatch;
    this.onEnd = onEnd;
    this.last = after;
    this.pending = [];
    this.frame = null;
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
    if (this.frame !== null) return;
    const flush = () => {
      this.frame = null;
      const batch = this.pending;
      this.pending = [];
      if (batch.length) this.onBatch(batch);
      if (this.finished && !this.pending.length) this.onEnd?.();
    };
    // one batch per frame; a hidden tab gets no frames, so a timer stands in
    this.frame = document.hidden ? setTimeout(flush, 250) : requestAnimationFrame(flush);
  }
}
