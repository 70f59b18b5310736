"""The "Why?" view: Integrated Gradients and Grad-CAM drawn over LeNet-5's input, and a conv1
channel switched off by a click, the prediction bars then equal to what the API (and a
forward hook in plain torch) give."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from playwright.sync_api import expect

from models.build import build
from models.inputs import tokenize
from models.presets import PRESETS

pytestmark = pytest.mark.browser


def lenet_with_channel_off(channel: int, patch_seed: int | None = None) -> list[float]:
    """The oracle: the preset (seed 0) on torch.randn after manual_seed(0), conv1[channel] = 0
    (or, with ``patch_seed``, conv1[channel] of the input randn after manual_seed(patch_seed))."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    clean = None
    if patch_seed is not None:
        torch.manual_seed(patch_seed)
        with torch.no_grad():
            clean = model.conv1(torch.randn(1, 1, 32, 32))
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32)

    def off(_m, _a, o):
        o = o.clone()
        o[:, channel] = 0 if clean is None else clean[:, channel]
        return o

    model.conv1.register_forward_hook(off)
    with torch.no_grad():
        return model(x)[0].tolist()


def input_gradient() -> torch.Tensor:
    """d(predicted class score)/d(input) for the page's input (randn after manual_seed(0))."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32).requires_grad_()
    out = model(x)
    out[0, int(out[0].argmax())].backward()
    return x.grad[0, 0]


def overlay_drawn(page, method: str) -> None:
    page.select_option("#why-method", method)
    page.click("#why-explain")
    expect(page.locator("#why")).to_have_attribute("data-method", method)
    traces = page.evaluate(
        "document.querySelector('#why-overlay').data.map(t => [t.z.length, t.z[0].length])"
    )
    assert traces == [[32, 32], [32, 32]]  # the input, and the attribution over it


def test_overlays_and_switching_a_channel_off(page, server, shot):
    page.goto(f"{server}/")
    page.click("a[data-preset=lenet5]")
    page.wait_for_selector("#stack .block[data-layer=fc3]")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#tab-why")
    page.wait_for_selector("#why-maps.js-plotly-plot")
    page.wait_for_selector("#why-bars[data-values]")
    before = json.loads(page.get_attribute("#why-bars", "data-values"))

    overlay_drawn(page, "integrated_gradients")
    shot(page, "why_integrated_gradients")
    overlay_drawn(page, "gradcam")
    shot(page, "why_gradcam", docs=True)
    overlay_drawn(page, "gradients")
    drawn = page.evaluate("document.querySelector('#why-overlay').data[1].z")
    assert np.asarray(drawn) == pytest.approx(input_gradient().numpy(), rel=1e-5, abs=1e-9)

    page.click("#why-featvis")
    page.wait_for_selector("#why-featvis-map.js-plotly-plot")
    z = page.evaluate("document.querySelector('#why-featvis-map').data[0].z")
    assert (len(z), len(z[0])) == (32, 32)
    expect(page.locator("#why")).to_contain_text("conv1[0]: 64 steps")

    page.click("#why-switches button[data-channel='2']")
    expect(page.locator("#why-switches button[data-channel='2']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_function(
        "b => document.querySelector('#why-bars').dataset.values !== b", arg=json.dumps(before)
    )
    after = json.loads(page.get_attribute("#why-bars", "data-values"))
    assert after != before
    # what the API returns for the same request, asked directly from the page
    direct = page.evaluate(
        """async () => {
          const headers = {Authorization: `Bearer ${localStorage.getItem("playground.token")}`,
                           "Content-Type": "application/json"};
          const list = await (await fetch("/api/models", {headers})).json();
          const body = {inputs: {x: {kind: "random", distribution: "normal", seed: 0}},
                        encoding: "f32", capture: "none",
                        interventions: [{layer: "conv1", op: "zero", channels: [2]}]};
          const url = `/api/models/${list.models[0].id}/intervene`;
          const init = {method: "POST", headers, body: JSON.stringify(body)};
          return (await (await fetch(url, init)).json()).outputs.fc3;
        }"""
    )
    raw = np.frombuffer(base64.b64decode(direct["data"]), dtype="<f4")
    assert after == raw.tolist()
    assert after == pytest.approx(lenet_with_channel_off(2), rel=1e-5, abs=1e-6)
    bars = page.evaluate("document.querySelector('#why-bars').data[0].y")
    assert bars == pytest.approx(after)
    title = page.evaluate("document.querySelector('#why-maps').layout.annotations[2].text")
    assert title == "conv1[2] off"
    page.locator("#why-bars").scroll_into_view_if_needed()
    shot(page, "why_channel_off", docs=True)

    # the channels switched off are part of the link: reopened, it shows the same prediction
    page.wait_for_function("() => location.hash.startsWith('#z=')")
    page.wait_for_timeout(400)  # the hash is written 200 ms after the last change
    page.reload()
    expect(page.locator("#why-switches button[data-channel='2']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.wait_for_selector("#why-bars[data-values]")
    assert json.loads(page.get_attribute("#why-bars", "data-values")) == after

    # patch instead of zero: the channel from another input (random, seed 1)
    want = lenet_with_channel_off(2, patch_seed=1)
    page.check("#why-patch")
    page.wait_for_function(
        """want => {
          const got = JSON.parse(document.querySelector('#why-bars').dataset.values || "[]");
          return got.length === want.length &&
            got.every((v, i) => Math.abs(v - want[i]) <= 1e-5 * Math.abs(want[i]) + 1e-6);
        }""",
        arg=want,
    )
    assert json.loads(page.get_attribute("#why-bars", "data-values")) != after


def test_tagger_words_explained_by_their_embedding_gradient(page, server):
    page.goto(f"{server}/")
    page.click("a[data-preset=lstm_tagger]")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#tab-why")
    page.click("#why-explain")
    expect(page.locator("#why")).to_have_attribute("data-method", "tokens")
    words = page.evaluate("document.querySelector('#why-overlay').data[0].x")
    drawn = page.evaluate("document.querySelector('#why-overlay').data[0].y")
    preset = PRESETS["lstm_tagger"]
    model = build(preset.spec, seed=preset.seed).model.eval()
    ids, _ = tokenize(" ".join(words), preset.spec["inputs"]["sentence"]["vocab"])
    kept = {}
    model.word_embeddings.register_forward_hook(lambda _m, _a, o: kept.setdefault("e", o))
    out = model(torch.tensor(ids))
    kept["e"].retain_grad()
    out[..., int(out[0].argmax())].sum().backward()
    want = kept["e"].grad.norm(dim=-1).tolist()
    assert drawn == pytest.approx(want, rel=1e-4)
