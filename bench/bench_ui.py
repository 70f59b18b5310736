"""Bench: navigation to the first activation map drawn, cold cache, for LeNet-5 (target ≤ 1.5 s).

The playground runs as ``python -m server`` on a free port of 127.0.0.1 (rate limit off,
data in a temporary directory). Debian's Chromium (Playwright) opens a share link for
LeNet-5 that runs on open and selects conv1, in a fresh browser context each time (empty
HTTP cache, no localStorage: a first visit, which creates a workspace) with the cache also
disabled over CDP. The time is the page's own ``performance.mark("pg:first-activation")``,
set when the first layer's maps have been drawn by Plotly, measured from navigation start.
The path covers: the HTML, CSS and ES modules, a workspace, building the model, the run
(Plotly, preloaded, starts up meanwhile), decoding the f32 payloads and drawing. The printed phases
are the page's own marks and resource timings, so a slow phase can be found.

Baseline in the same run: the same link with the full Plotly bundle from the ``plotly``
package (4.8 MB) served in place of the cartesian partial bundle (1.5 MB).

A second measure picks how to draw a layer's channels: one figure with a subplot per
channel, against one small figure per channel (LeNet's conv1, 6 maps of 28×28, and pool2,
16 of 6×6), drawn in the page, median of several draws each.

    python bench/bench_ui.py [--runs 7]

Not part of the test suite. Needs /usr/bin/chromium; never runs ``playwright install``.
"""

from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import tempfile
import zlib
from pathlib import Path

import plotly
from playwright.sync_api import Browser, Route, sync_playwright

from models.presets import PRESETS
from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]
FULL_PLOTLY = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
TARGET_S = 1.5


def share_hash(preset: str = "lenet5", focus: str = "conv1") -> str:
    """The hash static/js/state.js writes: base64url of raw-deflated JSON of the page state."""
    p = PRESETS[preset]
    state = {
        "v": 1,
        "spec": p.spec,
        "seed": p.seed,
        "inputs": p.default_inputs,
        "mode": "eval",
        "runSeed": 0,
        "tab": "run",
        "palette": True,
        "param": None,
        "focus": focus,
        "autorun": True,
    }
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw = deflate.compress(json.dumps(state).encode()) + deflate.flush()
    return "#z=" + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def first_map_ms(browser: Browser, url: str, full_bundle: bool) -> dict[str, float]:
    """One cold navigation; the page's marks, in ms since navigation start."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = ctx.new_page()
        cdp = ctx.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if full_bundle:
            body = FULL_PLOTLY.read_bytes()

            def swap(route: Route) -> None:
                route.fulfill(body=body, content_type="text/javascript")

            page.route("**/plotly-cartesian.min.js", swap)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        # the mark is set with the first layer's data-drawn (wait_for_function would need eval,
        # which the page's CSP refuses)
        page.wait_for_selector(".act-card:not(.input-card) .fig[data-drawn]", timeout=30_000)
        if errors:
            raise RuntimeError(f"the page failed: {errors}")
        return page.evaluate(
            """() => {
              const nav = performance.getEntriesByType('navigation')[0];
              const res = (part) => performance.getEntriesByType('resource')
                .find((r) => r.name.includes(part));
              const run = performance.getEntriesByType('resource')
                .find((r) => r.name.endsWith('/run'));
              const plotly = res('plotly');
              const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
              return {
                first_map: mark('pg:first-activation'),
                boot: mark('pg:boot'),
                dom_content_loaded: nav.domContentLoadedEventEnd,
                plotly_loaded: plotly ? plotly.responseEnd : NaN,
                plotly_ready: mark('pg:plotly-ready'),
                run_done: run ? run.responseEnd : NaN,
                shown: mark('pg:results-shown'),
                draw_start: mark('pg:first-draw-start'),
              };
            }"""
        )
    finally:
        ctx.close()


GRID_VS_SMALL = """async ({ reps }) => {
  const charts = await import('/static/js/charts.js');
  const Plotly = await charts.plotlyReady();
  const host = document.createElement('div');
  host.style.width = '700px';
  document.body.prepend(host);
  const maps = (n, h) => Array.from({ length: n }, (_, i) => ({
    title: `ch ${i}`,
    z: Array.from({ length: h }, (_, r) =>
      Array.from({ length: h }, (_, c) => Math.sin(i + r * c))),
  }));
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const out = {};
  for (const [name, n, h] of [['conv1 6×28×28', 6, 28], ['pool2 16×6×6', 16, 6]]) {
    const m = maps(n, h);
    const grid = [];
    const small = [];
    for (let k = 0; k < reps; k += 1) {
      const div = document.createElement('div');
      host.replaceChildren(div);
      let t = performance.now();
      await charts.heatmapGrid(div, m, { range: [-1, 1] });
      grid.push(performance.now() - t);
      Plotly.purge(div);
      const divs = m.map(() => document.createElement('div'));
      host.replaceChildren(...divs);
      t = performance.now();
      for (let i = 0; i < n; i += 1) {
        await charts.heatmap(divs[i], m[i].z, { range: [-1, 1], height: 120 });
      }
      small.push(performance.now() - t);
      divs.forEach((d) => Plotly.purge(d));
    }
    out[name] = { subplots: median(grid), separate: median(small) };
  }
  host.remove();
  return out;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="cold navigations per variant")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is not installed")
    with tempfile.TemporaryDirectory(prefix="bench_ui_") as tmp:
        srv = ChildServer(
            tmp,
            env={
                "PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0",
                "PLAYGROUND_VALIDATE_RATE_LIMIT_PER_MINUTE": "0",
            },
        ).start()
        try:
            url = f"{srv.url}/playground{share_hash()}"
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    first_map_ms(browser, url, False)  # warm the server (torch, SQLite)
                    rows = {"partial": [], "full": []}
                    for _ in range(args.runs):  # interleaved, so drift hits both alike
                        rows["partial"].append(first_map_ms(browser, url, False))
                        rows["full"].append(first_map_ms(browser, url, True))
                    ctx = browser.new_context(viewport={"width": 1366, "height": 768})
                    page = ctx.new_page()
                    page.goto(f"{srv.url}/playground#new")
                    page.wait_for_selector(".palette-item")
                    grid = page.evaluate(GRID_VS_SMALL, {"reps": 9})
                    ctx.close()
                finally:
                    browser.close()
        finally:
            srv.stop()
    report(rows, grid, args.runs)


def report(rows: dict[str, list[dict[str, float]]], grid: dict, runs: int) -> None:
    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[variant])

    print(f"LeNet-5, navigation to the first activation map drawn, cold cache, {runs} runs each")
    print(f"{'':32}{'partial 1.5 MB':>16}{'full 4.8 MB':>14}")
    for key, label in [
        ("boot", "page script starts"),
        ("dom_content_loaded", "DOMContentLoaded"),
        ("plotly_loaded", "Plotly downloaded"),
        ("plotly_ready", "Plotly parsed and run"),
        ("run_done", "run answered"),
        ("shown", "results laid out"),
        ("draw_start", "first figure starts"),
        ("first_map", "first activation map drawn"),
    ]:
        print(f"{label:32}{med('partial', key):13.0f} ms{med('full', key):11.0f} ms")
    part = med("partial", "first_map")
    full = med("full", "first_map")
    each = ", ".join(f"{r['first_map']:.0f}" for r in rows["partial"])
    print(f"first map, partial bundle, each run: {each} ms")
    print(f"ratio partial/full: {part / full:.2f}")
    verdict = "meets" if part <= TARGET_S * 1000 else "MISSES"
    print(f"median {part / 1000:.2f} s: {verdict} the {TARGET_S} s target")
    print("\nOne figure with a subplot per channel vs one figure per channel (median ms):")
    for name, r in grid.items():
        ratio = r["separate"] / r["subplots"]
        sub, sep = r["subplots"], r["separate"]
        print(f"  {name:16} subplots {sub:6.1f}  separate {sep:6.1f}  ×{ratio:.1f}")


if __name__ == "__main__":
    main()
