"""A run's maps painted at once on canvases (static/js/map_canvas.js) before Plotly has
started, then replaced by Plotly's figures: the painted pixels are the colours of the values
the API sent (its u8 codes, on the page's colour scales, computed here independently),
row 0 on top; Plotly's figure, once drawn, holds the same values, paints the same colours
at the same places, and the painting is gone."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Route

from bench.bench_ui import share_hash

pytestmark = pytest.mark.browser

PLOTLY = "**/plotly-cartesian.min.js"
LAYERS = ("conv1", "relu1", "conv2")  # signed (RdBu) and one-signed (Viridis) maps

# Plotly's "Viridis" (its colorscale scales) and ColorBrewer's RdBu, as the page uses them
VIRIDIS = [
    (0, "#440154"),
    (0.06274509803921569, "#48186a"),
    (0.12549019607843137, "#472d7b"),
    (0.18823529411764706, "#424086"),
    (0.25098039215686274, "#3b528b"),
    (0.3137254901960784, "#33638d"),
    (0.3764705882352941, "#2c728e"),
    (0.4392156862745098, "#26828e"),
    (0.5019607843137255, "#21918c"),
    (0.5647058823529412, "#1fa088"),
    (0.6274509803921569, "#28ae80"),
    (0.6901960784313725, "#3fbc73"),
    (0.7529411764705882, "#5ec962"),
    (0.8156862745098039, "#84d44b"),
    (0.8784313725490196, "#addc30"),
    (0.9411764705882353, "#d8e219"),
    (1, "#fde725"),
]
RDBU = [
    (0, "#2166ac"),
    (0.1, "#4393c3"),
    (0.25, "#92c5de"),
    (0.4, "#d1e5f0"),
    (0.5, "#f7f7f7"),
    (0.6, "#fddbc7"),
    (0.75, "#f4a582"),
    (0.9, "#d6604d"),
    (1, "#b2182b"),
]

CANVASES = """(sel) => [...document.querySelectorAll(sel + ' .map-canvas canvas')].map((c) => {
  const r = c.getBoundingClientRect();
  const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return {w: c.width, h: c.height, rgba: Array.from(px), box: [r.x, r.y, r.width, r.height]};
})"""

CENTRES = """(sel) => [...document.querySelectorAll(sel)].map((t) => {
  const r = t.getBoundingClientRect();
  return [t.textContent, r.x + r.width / 2, r.y + r.height / 2];
})"""

IMAGES = """(sel) => [...document.querySelectorAll(sel + ' .hm image')].map((im) => {
  const r = im.getBoundingClientRect();
  return {href: im.href.baseVal,
          box: [r.x, r.y, r.width, r.height]};
})"""


def rgb(hexcode: str) -> tuple[int, int, int]:
    n = int(hexcode[1:], 16)
    return (n >> 16) & 255, (n >> 8) & 255, n & 255


def colour(v: float, lo: float, hi: float) -> tuple[int, int, int]:
    """The page's colour axis (diverging around 0 when the values change sign) and Plotly's
    piecewise-linear colour of a value on it, each channel rounded half up (Math.round)."""
    if lo < 0 < hi:
        m = max(-lo, hi)
        stops, cmin, cmax = RDBU, -m, m
    else:
        stops, cmin, cmax = VIRIDIS, lo, (hi if hi != lo else lo + 1e-6)
    domain = [cmin + t * (cmax - cmin) for t, _ in stops]
    i = 1
    while i < len(domain) - 1 and not v < domain[i]:
        i += 1
    i -= 1
    t = min(1.0, max(0.0, (v - domain[i]) / (domain[i + 1] - domain[i])))
    a, b = rgb(stops[i][1]), rgb(stops[i + 1][1])
    return tuple(math.floor(a[k] * (1 - t) + b[k] * t + 0.5) for k in range(3))


def api_maps(act: dict) -> tuple[np.ndarray, np.ndarray]:
    """(channels, h, w) of the API's u8 values (float32, as the page decodes them) and of the
    colours the page should paint for them, from the codes and the layer's statistics."""
    t = act["tensor"]
    assert t["encoding"] == "u8"
    _, c, h, w = t["shape"]
    codes = np.frombuffer(base64.b64decode(t["data"]), dtype=np.uint8).reshape(c, h, w)
    levels = np.array([t["offset"] + k * t["scale"] for k in range(256)], dtype=np.float32)
    lo, hi = act["stats"]["min"], act["stats"]["max"]
    table = np.array([colour(float(v), lo, hi) for v in levels], dtype=np.uint8)
    return levels[codes], table[codes]


def open_held(page: Page, server: str) -> tuple[list[Route], dict]:
    """LeNet-5's link that runs on open, with Plotly's file held back: the run's answer."""
    held: list[Route] = []
    page.route(PLOTLY, lambda route: held.append(route))
    with page.expect_response(lambda r: r.url.endswith("/run")) as answer:
        page.goto(f"{server}/playground{share_hash()}", wait_until="domcontentloaded")
    page.wait_for_selector("#act-conv2 .fig[data-drawn=grid]")
    return held, answer.value.json()


def release(page: Page, held: list[Route]) -> None:
    for route in held:
        route.continue_()
    page.unroute(PLOTLY)


def fig_height(page: Page, sel: str) -> float:
    return page.locator(sel).bounding_box()["height"]


def painted(page: Page, layer: str) -> np.ndarray:
    """The painted canvases of a layer: (channels, h, w, 3), alpha checked opaque."""
    maps = page.evaluate(CANVASES, f"#act-{layer} .fig")
    out = []
    for m in maps:
        rgba = np.asarray(m["rgba"], dtype=np.uint8).reshape(m["h"], m["w"], 4)
        assert (rgba[..., 3] == 255).all()
        out.append(rgba[..., :3])
    return np.stack(out)


def test_maps_are_painted_in_the_api_values_colours_before_plotly(page, server, shot):
    held, run = open_held(page, server)
    assert held, "Plotly's file is held back"
    assert page.evaluate("typeof window.Plotly") == "undefined"
    assert page.locator(".act-card .js-plotly-plot").count() == 0
    for layer in LAYERS:
        fig = page.locator(f"#act-{layer} .fig")
        assert fig.get_attribute("data-interactive") is None
        _, want = api_maps(run["activations"][layer])
        got = painted(page, layer)
        assert got.shape == want.shape  # one canvas per channel, one pixel per value
        np.testing.assert_array_equal(got, want)  # colours and orientation (row 0 on top)
        titles = fig.locator(".map-canvas-title").all_inner_texts()
        assert titles == [f"ch {i}" for i in range(want.shape[0])]
    marks = page.evaluate("() => performance.getEntriesByType('mark').map((m) => m.name)")
    assert {"pg:first-activation", "pg:drawn:conv1", "pg:drawn:conv2"} <= set(marks)
    assert not any(m.startswith("pg:interactive:") for m in marks)
    shot(page, "lenet_painted_before_plotly")
    release(page, held)
    page.wait_for_selector("#act-conv1 .fig[data-interactive=grid]")  # in view: drawn


def test_plotly_replaces_the_painting_with_the_same_values_colours_and_places(page, server, shot):
    held, run = open_held(page, server)
    before = {layer: page.evaluate(CANVASES, f"#act-{layer} .fig") for layer in LAYERS}
    heights = {layer: fig_height(page, f"#act-{layer} .fig") for layer in LAYERS}
    titles = {layer: page.evaluate(CENTRES, f"#act-{layer} .map-canvas-title") for layer in LAYERS}
    release(page, held)
    for layer in LAYERS:
        sel = f"#act-{layer} .fig"
        page.locator(sel).scroll_into_view_if_needed()
        page.wait_for_selector(f"{sel}[data-interactive=grid]")
        assert page.locator(f"{sel} .map-canvas").count() == 0, "the painting is gone"
        values, colours = api_maps(run["activations"][layer])
        z = np.asarray(page.evaluate("(s) => document.querySelector(s).data.map(t => t.z)", sel))
        np.testing.assert_array_equal(z.astype(np.float32), values)
        # Plotly's own heatmap images: the colour at each cell's centre, at the painting's place
        images = page.evaluate(IMAGES, sel)
        assert len(images) == len(before[layer]) == colours.shape[0]
        assert abs(fig_height(page, sel) - heights[layer]) <= 1, (
            "the figure keeps the painting's height"
        )
        # the titles where the painting had them, centred over their maps
        plotly_titles = sorted(page.evaluate(CENTRES, f"{sel} .annotation-text"))
        for (text, x, y), (was, x0, y0) in zip(plotly_titles, sorted(titles[layer]), strict=True):
            assert text == was and abs(x - x0) <= 3 and abs(y - y0) <= 4, (text, x, y, x0, y0)
        for image in images:
            # the painting at the same place (within 2 px: Plotly rounds its subplots)
            x, y = image["box"][:2]
            shift = [abs(x - c["box"][0]) + abs(y - c["box"][1]) for c in before[layer]]
            k = int(np.argmin(shift))
            assert (
                shift[k] <= 2
                and max(
                    abs(a - b) for a, b in zip(image["box"], before[layer][k]["box"], strict=True)
                )
                <= 2
            ), (image["box"], before[layer][k]["box"])
            png = base64.b64decode(image["href"].split(",", 1)[1])
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            ph, pw = pixels.shape[:2]
            h, w = colours.shape[1:3]
            rows = ((np.arange(h) + 0.5) * ph / h).astype(int)
            cols = ((np.arange(w) + 0.5) * pw / w).astype(int)
            np.testing.assert_array_equal(pixels[np.ix_(rows, cols)], colours[k])
    shot(page, "lenet_plotly_after_painting")
