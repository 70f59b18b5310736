"""Bench: navigation to LeNet-5's activation maps drawn, cold cache, against an anchor page.

The playground runs as ``python -m server`` on a free port of 127.0.0.1 (rate limit off,
data in a temporary directory). Debian's Chromium (Playwright) opens a share link for
LeNet-5 that runs on open and selects conv1, in a fresh browser context each time (empty
HTTP cache, no localStorage: a first visit, which creates a workspace) with the cache also
disabled over CDP, in a viewport tall enough (1366×1600) to hold conv1 … conv2. Times are
the page's own marks, from navigation start: ``pg:first-activation`` (the first layer's maps
on screen), ``pg:drawn:<layer>`` (a layer's maps on screen: painted on canvases from the
run's answer, static/js/map_canvas.js, without waiting for Plotly) and
``pg:interactive:<layer>`` (Plotly's figure drawn in their place: hover values, zoom, colour
bar). "All 22 conv maps" is when both conv1's 6 and conv2's 16 are, painted and interactive
in two columns. The path covers the HTML, CSS and ES modules, a workspace, building the
model, the run (Plotly, preloaded, starts once its maps are painted), decoding, painting and
drawing; the printed phases are the page's marks and resource timings.

Anchor in the same run, interleaved: a plain page (no modules, no build) with the same
Plotly bundle in a ``<script>`` tag that asks the same run of an already built LeNet-5 while
Plotly loads, then draws the same 22 heatmaps with Plotly (conv1's 6 and conv2's 16, one
figure each, a subplot per map): its maps are on screen and interactive at once. Targets:
all 22 maps on screen ≤ the anchor's time; first map ≤ 1.0 s (quiet machine).

``--unbundled`` adds the page with its ES modules one by one (``/playground?bundle=0``, each
preloaded with ``modulepreload``), as it was served before server/js_bundle.py made them one
file: the before and after of the bundle, interleaved in the same run.

``--bundles`` adds the earlier baseline: the same link with the full Plotly bundle from the
``plotly`` package (4.8 MB) served in place of the cartesian partial bundle (1.5 MB). A last
measure picks how to draw a layer's channels: one figure with a subplot per channel, against
one small figure per channel, drawn in the page, median of several draws each.

``--latency 40`` makes every request of both pages 40 ms later (Chromium's network
emulation), as on a classroom's Wi-Fi, where each round trip the modules take costs more.

    python bench/bench_ui.py [--runs 7] [--unbundled] [--latency MS] [--bundles]

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

import httpx
import plotly
from playwright.sync_api import Browser, BrowserContext, Page, Route, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's server, not an installed one
from models.presets import PRESETS  # noqa: E402
from server.child import ChildServer  # noqa: E402

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
TARGET_FIRST_S = 1.0
VIEWPORT = {"width": 1366, "height": 1600}  # conv1 … conv2 in view (and within 300 px)


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


def cold_page(browser: Browser, latency_ms: float) -> tuple[BrowserContext, Page]:
    """A fresh context's page, HTTP cache off, each request ``latency_ms`` later (Chromium's
    network emulation: a classroom network's round trip)."""
    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
    if latency_ms:
        conditions = {"latency": latency_ms, "downloadThroughput": -1, "uploadThroughput": -1}
        cdp.send("Network.emulateNetworkConditions", {"offline": False, **conditions})
    return ctx, page


def first_map_ms(
    browser: Browser, url: str, full_bundle: bool, latency_ms: float = 0
) -> dict[str, float]:
    """One cold navigation; the page's marks, in ms since navigation start."""
    ctx, page = cold_page(browser, latency_ms)
    try:
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
        page.wait_for_selector("#act-conv2 .fig[data-interactive]", timeout=30_000)
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
              const all = performance.getEntriesByType('resource');
              const js = all.filter(
                (r) => r.name.includes('/static/js/') || r.name.includes('/bundle/'));
              const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? NaN;
              return {
                first_map: mark('pg:first-activation'),
                boot: mark('pg:boot'),
                requests: all.length,
                js_requests: js.length,
                js_bytes: js.reduce((n, r) => n + r.encodedBodySize, 0),
                js_first_start: Math.min(...js.map((r) => r.requestStart)),
                js_arrived: Math.max(...js.map((r) => r.responseEnd)),
                dom_content_loaded: nav.domContentLoadedEventEnd,
                plotly_loaded: plotly ? plotly.responseEnd : NaN,
                plotly_ready: mark('pg:plotly-ready'),
                run_done: run ? run.responseEnd : NaN,
                shown: mark('pg:results-shown'),
                draw_start: mark('pg:first-draw-start'),
                conv1: mark('pg:drawn:conv1'),
                all_conv: Math.max(mark('pg:drawn:conv1'), mark('pg:drawn:conv2')),
                first_interactive: mark('pg:interactive:conv1'),
                all_interactive: Math.max(
                  mark('pg:interactive:conv1'), mark('pg:interactive:conv2')),
              };
            }"""
        )
    finally:
        ctx.close()


ANCHOR_HTML = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>anchor</title>
</head><body><div id="conv1" style="width:700px"></div><div id="conv2" style="width:700px"></div>
<script>
const answer = fetch(RUN_URL, {method: "POST", body: JSON.stringify({encoding: "u8"}),
  headers: {"content-type": "application/json", authorization: "Bearer " + TOKEN}})
  .then((r) => r.json());
</script>
<script src="/static/vendor/plotly/plotly-cartesian.min.js"></script>
<script>
function decode(p) {
  const bin = atob(p.data);
  const out = new Float32Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = p.offset + bin.charCodeAt(i) * p.scale;
  return out;
}
async function grid(id, p) {
  const [, c, h, w] = p.shape;
  const v = decode(p);
  const cols = 8, rows = Math.ceil(c / cols);
  const traces = [];
  const layout = {height: rows * 110, margin: {l: 4, r: 60, t: 16, b: 4},
                  coloraxis: {colorscale: "RdBu"}};
  for (let i = 0; i < c; i += 1) {
    const k = i ? String(i + 1) : "";
    const z = [];
    for (let r = 0; r < h; r += 1) {
      const at = (i * h + r) * w;
      z.push(Array.from(v.subarray(at, at + w)));
    }
    const x0 = (i % cols) / cols, y1 = 1 - Math.floor(i / cols) / rows;
    layout["xaxis" + k] = {domain: [x0, x0 + 1 / cols - 0.02], anchor: "y" + k,
                           showticklabels: false};
    layout["yaxis" + k] = {domain: [y1 - 1 / rows + 0.04, y1], anchor: "x" + k,
                           autorange: "reversed", showticklabels: false};
    traces.push({type: "heatmap", z, xaxis: "x" + k, yaxis: "y" + k, coloraxis: "coloraxis"});
  }
  await Plotly.newPlot(id, traces, layout, {displaylogo: false, responsive: true});
  performance.mark("anchor:" + id);
}
answer.then(async (run) => {
  await grid("conv1", run.activations.conv1.tensor);
  await grid("conv2", run.activations.conv2.tensor);
});
</script></body></html>"""


def anchor_page(server: str) -> str:
    """The anchor's HTML, asking the run of a LeNet-5 built here (seed 0, as the link's)."""
    with httpx.Client(base_url=server, timeout=60) as c:
        token = c.post("/api/workspaces").json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        model = c.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=auth).json()
    run_url = f"/api/models/{model['id']}/run"
    return ANCHOR_HTML.replace("RUN_URL", json.dumps(run_url)).replace("TOKEN", json.dumps(token))


def anchor_ms(browser: Browser, server: str, html: str, latency_ms: float = 0) -> dict[str, float]:
    """One cold navigation to the anchor page (served at /bench-anchor by the browser)."""
    ctx, page = cold_page(browser, latency_ms)
    try:
        page.route(
            f"{server}/bench-anchor", lambda r: r.fulfill(body=html, content_type="text/html")
        )
        page.goto(f"{server}/bench-anchor")
        page.wait_for_function(
            "() => performance.getEntriesByName('anchor:conv2').length", timeout=30_000
        )
        return page.evaluate(
            """() => ({
              conv1: performance.getEntriesByName('anchor:conv1')[0].startTime,
              all_conv: performance.getEntriesByName('anchor:conv2')[0].startTime,
            })"""
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
    parser.add_argument("--bundles", action="store_true", help="also the full Plotly bundle")
    parser.add_argument(
        "--latency", type=float, default=0, help="ms added to each request (default: none)"
    )
    parser.add_argument(
        "--unbundled", action="store_true", help="also the ES modules one by one (?bundle=0)"
    )
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
            html = anchor_page(srv.url)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    first_map_ms(browser, url, False)  # warm the server (torch, SQLite)
                    anchor_ms(browser, srv.url, html)
                    rows: dict[str, list[dict[str, float]]] = {"page": [], "anchor": []}
                    lat = args.latency
                    if args.unbundled:
                        rows["modules"] = []
                    if args.bundles:
                        rows["full"] = []
                    for _ in range(args.runs):  # interleaved, so drift hits all alike
                        rows["page"].append(first_map_ms(browser, url, False, lat))
                        rows["anchor"].append(anchor_ms(browser, srv.url, html, lat))
                        if args.unbundled:
                            unbundled = url.replace("/playground#", "/playground?bundle=0#")
                            rows["modules"].append(first_map_ms(browser, unbundled, False, lat))
                        if args.bundles:
                            rows["full"].append(first_map_ms(browser, url, True, lat))
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
    report(rows, grid, args.runs, args.latency)


def report(rows: dict[str, list[dict[str, float]]], grid: dict, runs: int, latency: float) -> None:
    def med(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in rows[variant])

    print(f"LeNet-5, navigation to its maps drawn, cold cache, {runs} runs each, interleaved")
    if latency:
        print(f"each request {latency:.0f} ms later (Chromium's network emulation)")
    columns = {"page": "one file", "modules": "?bundle=0", "full": "full Plotly"}
    shown = [v for v in columns if v in rows]
    print(f"{'page phases':32}" + "".join(f"{columns[v]:>14}" for v in shown))
    for key, label in [
        ("js_first_start", "first ES module requested"),
        ("js_arrived", "last ES module arrived"),
        ("boot", "page script starts"),
        ("dom_content_loaded", "DOMContentLoaded"),
        ("plotly_loaded", "Plotly downloaded"),
        ("run_done", "run answered"),
        ("plotly_ready", "Plotly parsed and run"),
        ("shown", "results laid out"),
        ("draw_start", "first Plotly figure starts"),
        ("first_map", "first map on screen"),
        ("all_conv", "all 22 conv maps on screen"),
        ("first_interactive", "conv1 interactive (Plotly)"),
        ("all_interactive", "all 22 interactive (Plotly)"),
        ("requests", "requests before the maps"),
        ("js_requests", "of which ES module files"),
    ]:
        unit = "" if key.endswith("requests") else " ms"
        print(f"{label:32}" + "".join(f"{med(v, key):{14 - len(unit)}.0f}{unit}" for v in shown))
    anchor_all = med("anchor", "all_conv")
    print(
        f"anchor page (same Plotly bundle, same run, no modules; drawn by Plotly, so on screen "
        f"and interactive at once): conv1 {med('anchor', 'conv1'):.0f} ms, all 22 "
        f"{anchor_all:.0f} ms"
    )
    for v in [v for v in ("page", "modules") if v in rows]:
        for key, what in [("all_conv", "on screen"), ("all_interactive", "interactive")]:
            each = ", ".join(
                f"{r[key]:.0f}/{a['all_conv']:.0f}"
                for r, a in zip(rows[v], rows["anchor"], strict=True)
            )
            ratio = med(v, key) / anchor_all
            target = f"{'meets' if ratio <= 1 else 'MISSES'} ≤ 1; " if key == "all_conv" else ""
            print(
                f"{columns[v]}: all 22 conv maps {what}, page/anchor = {ratio:.2f} "
                f"({target}each run {each} ms)"
            )
        first = med(v, "first_map")
        verdict = "meets" if first <= TARGET_FIRST_S * 1000 else "MISSES"
        print(
            f"{columns[v]}: first map on screen {first / 1000:.2f} s ({verdict} the "
            f"{TARGET_FIRST_S} s target, quiet machine)"
        )
    if "modules" in rows:
        print(
            "one file/one by one: first map "
            f"{med('page', 'first_map') / med('modules', 'first_map'):.2f}, all 22 conv maps "
            f"{med('page', 'all_conv') / med('modules', 'all_conv'):.2f}"
        )
    if "full" in rows:
        ratio = med("page", "first_map") / med("full", "first_map")
        print(f"first map, partial/full bundle: {ratio:.2f}")
    print("\nOne figure with a subplot per channel vs one figure per channel (median ms):")
    for name, r in grid.items():
        ratio = r["separate"] / r["subplots"]
        sub, sep = r["subplots"], r["separate"]
        print(f"  {name:16} subplots {sub:6.1f}  separate {sep:6.1f}  ×{ratio:.1f}")


if __name__ == "__main__":
    main()
