"""Bench: is the Train tab responsive while a training's event stream runs at its full rate?

The playground runs as ``python -m server`` on a free port of 127.0.0.1; Debian's Chromium
(Playwright) opens the spiral lesson (an MLP of 354 parameters: thousands of steps a second,
so the stream is as fast as the server makes it, one ``step`` event per batch and a gradient
flow record every 10 steps) and trains it for ``--steps`` steps. While it runs, the page
records every animation frame's interval (requestAnimationFrame) and every long task (a
PerformanceObserver of "longtask": main-thread work over 50 ms).

Baseline in the same run: the same page, idle (no training), for as long as the training
took. The figures are the frame-interval percentiles of both and their ratio, the long
tasks' count and total, and the events per second the page drew.

    python bench/bench_train_ui.py [--steps 4000]

Not part of the test suite. Needs /usr/bin/chromium; never runs ``playwright install``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from server.child import ChildServer

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

PROBE = """() => {
  window.__bench = {frames: [], long: []};
  const b = window.__bench;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) b.long.push(e.duration);
  }).observe({entryTypes: ["longtask"]});
  let last = performance.now();
  const tick = (t) => {
    b.frames.push(t - last);
    last = t;
    if (!b.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}"""


def collect(page: Page) -> dict:
    data = page.evaluate("() => { window.__bench.stop = true; return window.__bench; }")
    frames = sorted(data["frames"][1:])
    q = statistics.quantiles(frames, n=100) if len(frames) > 2 else [0.0] * 99
    return {
        "frames": len(frames),
        "p50": q[49],
        "p95": q[94],
        "max": frames[-1] if frames else 0.0,
        "long_tasks": len(data["long"]),
        "long_ms": sum(data["long"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4000, help="training steps (spiral MLP)")
    args = parser.parse_args()
    env = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}
    with ChildServer(Path(tempfile.mkdtemp()), env=env, timeout=60) as srv, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{srv.url}/playground#lesson=spiral_mlp")
        page.wait_for_selector("#train-start:not([disabled])")
        page.fill("#train-length", str(args.steps))
        page.locator("#train-length").dispatch_event("change")
        page.fill("#train-eval", str(max(1, args.steps // 10)))
        page.locator("#train-eval").dispatch_event("change")
        page.evaluate(PROBE)
        t0 = page.evaluate("() => performance.now()")
        page.click("#train-start")
        page.wait_for_selector("#train[data-trained=done]", timeout=600_000)
        seconds = (page.evaluate("() => performance.now()") - t0) / 1000
        busy = collect(page)
        drawn = page.evaluate("() => document.getElementById('chart-loss').data[0].x.length")
        page.evaluate(PROBE)
        page.wait_for_timeout(int(seconds * 1000))
        idle = collect(page)
        browser.close()
    print(
        f"spiral MLP, {args.steps} steps in {seconds:.2f} s: "
        f"{drawn / seconds:.0f} step events/s drawn"
    )
    for name, r in (("training", busy), ("idle", idle)):
        print(
            f"{name:9s} frames {r['frames']:5d}  p50 {r['p50']:6.1f} ms  p95 {r['p95']:6.1f} ms  "
            f"max {r['max']:6.1f} ms  long tasks {r['long_tasks']:3d} ({r['long_ms']:.0f} ms)"
        )
    print(f"frame p95 ratio training/idle: {busy['p95'] / max(idle['p95'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
