"""The Run tab's "Gradients" toggle: each layer's gradient drawn beside its activation, with
the values of the API's answer and of plain torch (forward hooks and ``autograd.grad``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from playwright.sync_api import expect

from models.build import build
from models.presets import PRESETS
from models.tensors import decode

pytestmark = pytest.mark.browser


def torch_gradients() -> dict[str, np.ndarray]:
    """d(predicted score)/d(input and each layer) for the page's input (randn, seed 0)."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    kept: dict[str, torch.Tensor] = {}
    for name, module in model.named_children():
        module.register_forward_hook(lambda _m, _a, o, n=name: kept.__setitem__(n, o))
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32).requires_grad_()
    out = model(x)
    grads = torch.autograd.grad(out[0, int(out[0].argmax())], [x, *kept.values()])
    return {n: g.numpy() for n, g in zip(["x", *kept], grads, strict=True)}


def test_gradient_maps_drawn_beside_activations(page, server, shot):
    page.goto(f"{server}/")
    page.click("a[data-preset=lenet5]")
    page.wait_for_selector("#act-conv1 .fig[data-drawn]")
    assert page.locator("[data-gradient]").count() == 0  # off by default
    with page.expect_response(lambda r: r.url.endswith("/run")) as answer:
        page.check("#run-gradients")
    run = answer.value.json()
    assert run["gradients"]["target"] is not None
    card = page.locator("#act-conv1 [data-gradient=conv1] .fig")
    card.scroll_into_view_if_needed()
    expect(card).to_have_attribute("data-interactive", "grid")
    oracle = torch_gradients()
    api = decode(run["activations"]["conv1"]["gradient"]["tensor"], max_elements=10**6).numpy()
    np.testing.assert_array_equal(api, oracle["conv1"])  # f32 on the CPU: bit for bit
    drawn = card.evaluate("f => f.data.filter(t => t.type === 'heatmap').map(t => t.z)")
    np.testing.assert_allclose(np.asarray(drawn), api[0], rtol=1e-6)
    # a diverging scale centred on zero
    axis = card.evaluate("f => f.layout.coloraxis")
    assert axis["cmid"] == 0 and axis["cmin"] == -axis["cmax"]

    inp = page.locator("#act-x [data-gradient=x] .fig")
    inp.scroll_into_view_if_needed()
    expect(inp).to_have_attribute("data-drawn", "heatmap")
    z = np.asarray(inp.evaluate("f => f.data[0].z"))
    np.testing.assert_allclose(z, oracle["x"][0, 0], rtol=1e-6)
    fc3 = page.locator("#act-fc3 [data-gradient=fc3] .fig")
    fc3.scroll_into_view_if_needed()
    expect(fc3).to_have_attribute("data-drawn", "bars")
    np.testing.assert_array_equal(fc3.evaluate("f => f.data[0].y"), oracle["fc3"][0])
    page.locator("#act-conv1").scroll_into_view_if_needed()
    shot(page, "run_gradients", docs=True)

    page.reload()  # the toggle is in the link
    page.wait_for_selector("#act-conv1 [data-gradient=conv1] .fig")
    expect(page.locator("#run-gradients")).to_be_checked()
