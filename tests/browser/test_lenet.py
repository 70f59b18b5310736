"""LeNet-5 from the start page: run a random input, see the activation maps Plotly drew, and
check the numbers against plain torch (the preset built with its seed, the same input)."""

from __future__ import annotations

import json
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
    page.wait_for_selector("#act-conv1 .fig[data-drawn=grid]")
    assert heatmaps(page, "#act-conv1 .fig") == 6
    z = page.evaluate("document.querySelector('#act-conv1 .fig').data[0].z")
    assert (len(z), len(z[0])) == (28, 28)
    shot(page, "lenet_conv1", docs=True)

    page.click("#stack .block[data-layer=pool2] .block-feedback")  # a click on the block jumps
    page.wait_for_selector("#act-pool2 .fig[data-drawn=grid]")
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
    page.wait_for_selector("#act-conv1 .fig[data-drawn]")
    expected = lenet_activations(seed=0)
    shown = page.evaluate("document.querySelector('#act-conv1 .fig').data.map(t => t.z)")
    assert torch.allclose(torch.tensor(shown), expected["conv1"][0], atol=2e-3, rtol=1e-3)
    page.click("#stack .block[data-layer=pool2] .block-type")
    with page.expect_download() as info:
        page.click("#act-pool2 button[aria-label='Download pool2 as JSON']")
    body = json.loads(Path(info.value.path()).read_text())
    assert body["shape"] == [1, 16, 6, 6]
    assert torch.allclose(torch.tensor(body["values"]), expected["pool2"], atol=2e-3, rtol=1e-3)
    scores = page.locator("#out-fc3 .pred-label").inner_text()
    assert scores == str(int(expected["fc3"].argmax()))
