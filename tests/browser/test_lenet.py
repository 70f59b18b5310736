"""LeNet-5 from the start page: run a random input, see the activation maps Plotly drew, and
check the numbers against plain torch (the preset built with its seed, the same input)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from playwright.sync_api import expect

from models.build import build
from models.presets import PRESETS

pytestmark = pytest.mark.browser


def lenet_activations(seed: int = 0) -> dict[str, torch.Tensor]:
    """The oracle: the preset built with seed 0, fed torch.randn after manual_seed(seed)."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    torch.manual_seed(seed)
    x = torch.randn(1, 1, 32, 32)
    out = {}
    with torch.no_grad():
        for name, module in model.named_children():
            x = module(x)
            out[name] = x.clone()
    return out


def test_start_page_opens_lenet_and_draws_its_maps(page, server, shot, heatmaps):
    page.goto(f"{server}/")
    shot(page, "start", docs=True)
    page.click("a[data-preset=lenet5]")
    page.wait_for_selector("#stack .block[data-layer=fc3]")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    page.wait_for_selector("#act-conv1 .fig[data-interactive=grid]")
    assert heatmaps(page, "#act-conv1 .fig") == 6
    z = page.evaluate("document.querySelector('#act-conv1 .fig').data[0].z")
    assert (len(z), len(z[0])) == (28, 28)
    shot(page, "lenet_conv1", docs=True)

    page.click("#stack .block[data-layer=pool2] .block-feedback")  # a click on the block jumps
    page.wait_for_selector("#act-pool2 .fig[data-interactive=grid]")
    assert heatmaps(page, "#act-pool2 .fig") == 16
    z = page.evaluate("document.querySelector('#act-pool2 .fig').data[15].z")
    assert (len(z), len(z[0])) == (6, 6)
    top = page.evaluate("document.querySelector('#act-pool2').getBoundingClientRect().top")
    assert top < 200, "clicking the block scrolls its activation into view"
    shot(page, "lenet_pool2", docs=True)


def test_activations_match_plain_torch(page, server):
    page.goto(f"{server}/playground#preset=lenet5&tab=run")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    page.click("#stack .block[data-layer=conv1] .block-type")  # maps are drawn as they show
    page.wait_for_selector("#act-conv1 .fig[data-interactive]")
    expected = lenet_activations(seed=0)
    conv1 = expected["conv1"][0]
    # drawn from u8: 256 levels from the minimum to the maximum, each within half a level
    shown = torch.tensor(
        page.evaluate("document.querySelector('#act-conv1 .fig').data.map(t => t.z)")
    )
    scale = (float(conv1.max()) - float(conv1.min())) / 255
    assert (shown.double() - conv1.double()).abs().max() <= scale / 2 + 1e-6
    assert not torch.equal(shown, conv1)
    # a hover fetches the exact values, and the figure is drawn again from them
    page.hover("#act-conv1 .fig .nsewdrag >> nth=0", position={"x": 40, "y": 40})
    page.wait_for_selector("#act-conv1 .fig[data-exact=true]")
    shown = torch.tensor(
        page.evaluate("document.querySelector('#act-conv1 .fig').data.map(t => t.z)")
    )
    assert torch.equal(shown, conv1)  # torch's float32, bit for bit
    page.mouse.move(0, 0)
    page.hover("#act-conv1 .fig .nsewdrag >> nth=0", position={"x": 41, "y": 41})
    page.wait_for_selector("#act-conv1 .fig .hoverlayer .hovertext")
    lines = page.evaluate(
        "[...document.querySelectorAll('#act-conv1 .fig .hovertext tspan.line')]"
        ".map(t => t.textContent)"
    )
    title, where, value = lines
    row, col = (int(v) for v in re.findall(r"\d+", where))
    assert (title, float(value)) == ("ch 0", float(f"{float(conv1[0, row, col]):.4g}"))
    page.click("#stack .block[data-layer=pool2] .block-type")
    with page.expect_download() as info:
        page.click("#act-pool2 button[aria-label='Download pool2 as JSON']")
    body = json.loads(Path(info.value.path()).read_text())
    assert body["shape"] == [1, 16, 6, 6]
    assert torch.allclose(torch.tensor(body["values"]), expected["pool2"], atol=2e-3, rtol=1e-3)
    # exact: the float32 values torch computed, not float16-rounded ones
    assert torch.equal(torch.tensor(body["values"]), expected["pool2"])
    assert body["note"] == "exact float32 values, as torch computed them"
    scores = page.locator("#out-fc3 .pred-label").inner_text()
    assert scores == str(int(expected["fc3"].argmax()))


def _fmt(x: float) -> str:
    """The UI's fmtNum for 1e-3 <= |x| < 1e5: four significant digits, no trailing zeros."""
    return repr(float(f"{x:.4g}"))


def test_a_layers_histogram_is_torch_histc(page, server):
    """The histogram next to conv1's maps: torch.histc's 30 bins over [min, max], each bar's
    tooltip naming its bin from the range the API sends."""
    page.goto(f"{server}/playground#preset=lenet5&tab=run")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    page.click("#stack .block[data-layer=conv1] .block-type")
    page.wait_for_selector("#act-conv1 svg.hist rect.hist-bar")
    conv1 = lenet_activations(seed=0)["conv1"]
    lo, hi = float(conv1.min()), float(conv1.max())
    label = page.locator("#act-conv1 svg.hist").get_attribute("aria-label")
    assert label == f"Histogram of conv1: 30 bins from {_fmt(lo)} to {_fmt(hi)}"
    titles = page.locator("#act-conv1 svg.hist rect.hist-bar title").all_text_contents()
    width = (hi - lo) / 30
    for i in (0, 7, 29):
        assert titles[i].startswith(f"[{_fmt(lo + i * width)}, {_fmt(lo + (i + 1) * width)}): ")
    shown = [int(t.rsplit(": ", 1)[1]) for t in titles]
    want = torch.histc(conv1, bins=30, min=lo, max=hi).to(torch.int64).tolist()
    assert sum(shown) == conv1.numel()
    # a value on a bin edge may fall either side between float64 and float32 arithmetic
    assert sum(abs(a - b) for a, b in zip(shown, want, strict=True)) <= 2


def test_input_statistics_are_the_servers_exact_ones(page, server):
    page.goto(f"{server}/playground#preset=lenet5&tab=run")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32)  # the default input: random normal, seed 0
    stats = page.locator("#act-x .stats")
    expect(stats.locator("div", has_text="mean").locator("dd")).to_have_text(_fmt(x.mean()))
    std = stats.locator("div", has_text="std").locator("dt")
    expect(std).to_have_text("std (pop.)")  # torch.std(x, correction=0), not x.std()
    expect(std).to_have_attribute("title", re.compile("correction=0"))
    expect(stats.locator("div", has_text="std").locator("dd")).to_have_text(
        _fmt(x.std(correction=0))
    )


def test_lesson_cards_run_on_open_and_the_top_bar_reaches_the_lab(page, server):
    page.goto(f"{server}/")
    page.click("a[data-lab=linear]")  # the "Linear layers" card: Linear by hand
    expect(page.locator("#tab-linear")).to_have_attribute("aria-selected", "true")
    page.goto(f"{server}/")
    page.click("a[data-preset=lstm_tagger]")  # a card that opens on Run also runs
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    expect(page.locator("#out-log_softmax .tags")).to_be_visible()
    page.click("#nav-effects")
    expect(page).to_have_url(re.compile("/effects"))
    expect(page.locator("#tab-pooling")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#nav-builder")).to_have_attribute("href", "/playground#new")
