"""The effects lab from the start page: every tab opens from its card, a control changes, the
figure changes; the tutorial's max pooling is checked against torch, and the state is kept in
the URL hash."""

from __future__ import annotations

import json

import pytest
import torch
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

DATA = "(s) => document.querySelector(s).data.map(t => ({x: t.x, y: t.y, z: t.z}))"


def open_card(page: Page, server: str, lab: str) -> None:
    page.goto(f"{server}/")
    page.click(f"a[data-lab={lab}]")
    expect(page.locator(f"#tab-{lab}")).to_have_attribute("aria-selected", "true")


def drawn(page: Page, selector: str, count: int = 1) -> None:
    page.wait_for_selector(f'{selector}[data-drawn="{count}"]')


def shown_z(page: Page, selector: str) -> torch.Tensor:
    """The values a heatmap figure shows (its first trace's z), as a float32 tensor."""
    return torch.tensor(page.evaluate("(s) => document.querySelector(s).data[0].z", selector))


def test_pooling_tutorial_matches_torch_and_kernel_changes_the_plot(page, server, shot):
    open_card(page, server, "pooling")
    drawn(page, "#pool-out")
    x = shown_z(page, "#pool-in")
    out = shown_z(page, "#pool-out")
    assert x.shape == (6, 6) and out.shape == (2, 2)
    quadrants = torch.tensor(
        [[x[:3, :3].max(), x[:3, 3:].max()], [x[3:, :3].max(), x[3:, 3:].max()]]
    )
    assert torch.equal(out, quadrants)
    torch.manual_seed(0)
    assert torch.allclose(x, torch.rand(1, 6, 6)[0])
    page.select_option("#pool-cell", "3")  # the keyboard way to pick an output cell
    expect(page.locator("#pool-readout")).to_contain_text("rows 3, 4, 5 × columns 3, 4, 5")
    shot(page, "effects_pooling", docs=True, full_page=True)
    before = page.evaluate(DATA, "#pool-out")
    page.fill("[data-key=kernel]", "2")
    drawn(page, "#pool-out", 2)
    after = page.evaluate(DATA, "#pool-out")
    assert len(after[0]["z"]) == 3 and after != before
    assert "kernel=2" in page.url


def test_pooling_dilation_and_adaptive_match_torch(page, server, shot):
    """The controls beyond the tutorial: dilation and ceil_mode on max pooling, then
    adaptive max pooling to a chosen size, each checked against torch on the drawn input."""
    F = torch.nn.functional
    open_card(page, server, "pooling")
    drawn(page, "#pool-out")
    page.fill("[data-key=size]", "7")
    drawn(page, "#pool-out", 2)
    page.fill("[data-key=kernel]", "2")
    drawn(page, "#pool-out", 3)
    page.fill("[data-key=dilation]", "2")
    drawn(page, "#pool-out", 4)
    page.check("[data-key=ceil]")
    drawn(page, "#pool-out", 5)
    expect(page.locator("#pool-call")).to_contain_text("dilation=2, ceil_mode=True")
    x = shown_z(page, "#pool-in")
    out = shown_z(page, "#pool-out")
    want = F.max_pool2d(x[None], 2, dilation=2, ceil_mode=True)[0]
    assert x.shape == (7, 7) and torch.equal(out, want)
    page.select_option("#pool-cell", "0")
    expect(page.locator("#pool-readout")).to_contain_text("rows 0, 2 × columns 0, 2")
    page.select_option("[data-key=op]", "adaptive_max")
    drawn(page, "#pool-out", 6)
    page.fill("[data-key=output]", "3")
    drawn(page, "#pool-out", 7)
    expect(page.locator("#pool-call")).to_contain_text("nn.AdaptiveMaxPool2d(output_size=3)")
    out = shown_z(page, "#pool-out")
    assert torch.equal(out, F.adaptive_max_pool2d(x[None], 3)[0])
    expect(page.locator("#pool-readout")).to_contain_text("the adaptive max of input rows")
    assert "op=adaptive_max" in page.url and "output=3" in page.url
    shot(page, "effects_pooling_adaptive", full_page=True)


def test_pooling_in_1d_matches_torch(page, server, shot):
    """1-D pooling: a seeded sequence as one row, MaxPool1d with dilation and then adaptive
    average pooling, each against torch on the same numbers; the readout names positions."""
    F = torch.nn.functional
    open_card(page, server, "pooling")
    drawn(page, "#pool-out")
    page.select_option("[data-key=dims]", "1")
    drawn(page, "#pool-out", 2)
    page.fill("[data-key=size]", "8")
    drawn(page, "#pool-out", 3)
    page.fill("[data-key=dilation]", "2")
    drawn(page, "#pool-out", 4)
    expect(page.locator("#pool-call")).to_have_text(
        "nn.MaxPool1d(kernel_size=3, dilation=2)(x): input 1×8 → output 1×2"
    )
    x = shown_z(page, "#pool-in")
    assert torch.equal(x, torch.rand(1, 8, generator=torch.Generator().manual_seed(0)))
    out = shown_z(page, "#pool-out")
    assert torch.equal(out, F.max_pool1d(x, 3, dilation=2))
    page.select_option("#pool-cell", "1")
    winner = [3, 5, 7][int(x[0, [3, 5, 7]].argmax())]
    expect(page.locator("#pool-readout")).to_contain_text(
        f"the max of input positions 3, 5, 7; the winner is input {winner}."
    )
    page.select_option("[data-key=op]", "adaptive_avg")
    drawn(page, "#pool-out", 5)
    page.fill("[data-key=output]", "3")
    drawn(page, "#pool-out", 6)
    expect(page.locator("#pool-call")).to_contain_text("nn.AdaptiveAvgPool1d(output_size=3)")
    out = shown_z(page, "#pool-out")
    assert torch.equal(out, F.adaptive_avg_pool1d(x, 3))
    page.select_option("#pool-cell", "1")
    expect(page.locator("#pool-readout")).to_contain_text("of input positions 2, 3, 4, 5.")
    assert "dims=1" in page.url
    shot(page, "effects_pooling_1d", full_page=True)


def test_pooling_a_layer_of_my_model(page, server, shot):
    """The input can be a layer of one of the workspace's models: LeNet-5's conv1 (built in
    the playground, seed 0) on the API's default input, one channel drawn and pooled."""
    from models.build import build
    from models.presets import PRESETS

    F = torch.nn.functional
    page.goto(f"{server}/playground#preset=lenet5")
    page.wait_for_selector("#model-status[data-kind=ok]")  # LeNet-5 is in this workspace
    page.goto(f"{server}/effects#tab=pooling")
    drawn(page, "#pool-out")
    page.select_option("#src-kind", "model")
    drawn(page, "#pool-out", 2)
    expect(page.locator("#src-layer")).to_have_value("conv1")
    page.fill("#src-channel", "2")
    drawn(page, "#pool-out", 3)
    expect(page.locator("#pool-call")).to_contain_text(
        "nn.MaxPool2d(kernel_size=3)(x): input 1×6×28×28 → output 1×6×9×9; conv1, plane 2"
    )
    assert page.locator("[data-key=size]").is_disabled()
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    with torch.no_grad():  # the default input of a model source: seeded normal, seed 0
        conv1 = model.conv1(torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)))
    x = shown_z(page, "#pool-in")
    assert torch.allclose(x, conv1[0, 2], rtol=1e-5, atol=1e-5)
    out = shown_z(page, "#pool-out")
    assert torch.equal(out, F.max_pool2d(x[None], 3)[0])
    page.select_option("#pool-cell", "10")  # (1, 1): rows 3-5 × columns 3-5 of the map
    window = x[3:6, 3:6]
    r, c = divmod(int(window.argmax()), 3)
    expect(page.locator("#pool-readout")).to_contain_text(
        f"rows 3, 4, 5 × columns 3, 4, 5; the winner is input ({r + 3}, {c + 3})."
    )
    assert "source=model" in page.url and "layer=conv1" in page.url and "channel=2" in page.url
    shot(page, "effects_pooling_model", full_page=True)


def test_normalization_train_eval_changes_the_output(page, server, shot):
    open_card(page, server, "normalization")
    drawn(page, "#norm-out")
    before = page.evaluate(DATA, "#norm-out")
    means = page.evaluate("document.querySelector('#norm-mean').data.map(t => t.y)")
    assert 10 < sum(means[0]) / 4 < 20 and max(abs(m) for m in means[1]) < 1e-5
    shot(page, "effects_normalization", docs=True, full_page=True)
    page.select_option("[data-key=mode]", "eval")
    drawn(page, "#norm-out", 2)
    assert page.evaluate(DATA, "#norm-out") != before
    assert "mode=eval" in page.url


def test_dropout_p_changes_the_masks(page, server, shot):
    open_card(page, server, "dropout")
    drawn(page, "#drop-masks")
    before = page.evaluate(DATA, "#drop-masks")
    assert len(before) == 4  # one mask per pass
    zero = page.evaluate("document.querySelector('#drop-zero').data[0].y")
    assert all(0.3 < z < 0.7 for z in zero)  # p = 0.5 on 16×16
    shot(page, "effects_dropout", docs=True, full_page=True)
    page.fill("[data-key=p]", "0.8")
    drawn(page, "#drop-masks", 2)
    assert page.evaluate(DATA, "#drop-masks") != before
    page.select_option("[data-key=mode]", "eval")
    drawn(page, "#drop-masks", 3)
    masks = page.evaluate(DATA, "#drop-masks")
    assert all(v == 1 for m in masks for row in m["z"] for v in row)  # eval: identity


def test_activations_params_change_the_curves(page, server, shot):
    open_card(page, server, "activations")
    drawn(page, "#act-f")
    drawn(page, "#act-softmax")
    before = page.evaluate(DATA, "#act-f")
    assert len(before) == 5
    soft = page.evaluate("document.querySelector('#act-softmax').data[0].y")
    assert torch.allclose(torch.tensor(soft), torch.softmax(torch.tensor([1.0, 2, 3]), 0))
    expect(page.locator("#act-stack")).to_contain_text("no single matrix matches")
    shot(page, "effects_activations", docs=True, full_page=True)
    page.fill("[data-arg=negative_slope][data-type=LeakyReLU]", "0.3")
    drawn(page, "#act-f", 2)
    assert page.evaluate(DATA, "#act-f") != before


def test_losses_reduction_and_values(page, server, shot):
    open_card(page, server, "losses")
    drawn(page, "#loss-curve")
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    expected = torch.nn.CrossEntropyLoss()(logits, torch.tensor([0, 1]))
    expect(page.locator("#loss-value")).to_contain_text(f"{expected.item():.4f}"[:5])
    before = page.evaluate(DATA, "#loss-grad")
    shot(page, "effects_losses", docs=True, full_page=True)
    page.select_option("[data-key=reduction]", "sum")
    drawn(page, "#loss-grad", 2)
    assert page.evaluate(DATA, "#loss-grad") != before  # sum: the gradient is twice the mean's


def test_loss_options_match_torch(page, server, shot):
    """Label smoothing and class weights for cross-entropy, delta for Huber: the value shown
    is torch's, and only the chosen loss's options can be edited."""
    F = torch.nn.functional
    open_card(page, server, "losses")
    drawn(page, "#loss-curve")
    for key in ("beta", "delta", "pos_weight", "log_target"):
        expect(page.locator(f"[data-key={key}]")).to_be_disabled()
    page.fill("[data-key=smoothing]", "0.1")
    drawn(page, "#loss-curve", 2)
    page.fill("[data-key=weight]", "[1, 2, 0.5]")
    drawn(page, "#loss-curve", 3)
    logits = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    weight = torch.tensor([1.0, 2.0, 0.5])
    expected = F.cross_entropy(logits, torch.tensor([0, 1]), weight=weight, label_smoothing=0.1)
    plain = F.cross_entropy(logits, torch.tensor([0, 1]))
    assert abs(expected - plain) > 1e-2  # the options change the value
    expect(page.locator("#loss-value")).to_contain_text(f"{expected.item():.4f}"[:5])
    shot(page, "effects_losses_options", full_page=True)
    page.select_option("[data-key=loss]", "HuberLoss")
    drawn(page, "#loss-curve", 4)
    expect(page.locator("[data-key=delta]")).to_be_enabled()
    expect(page.locator("[data-key=weight]")).to_be_disabled()
    preds = torch.tensor(json.loads(page.input_value("[data-key=preds]")))
    targets = torch.tensor(json.loads(page.input_value("[data-key=targets]")))
    page.fill("[data-key=delta]", "0.5")
    drawn(page, "#loss-curve", 5)
    expected = F.huber_loss(preds, targets, delta=0.5)
    expect(page.locator("#loss-value")).to_contain_text(f"{expected.item():.4f}"[:5])
    assert "delta=0.5" in page.url


def test_linear_by_hand_and_hash_restores(page, server, shot):
    page.goto(f"{server}/effects#tab=linear&in=4&out=3")
    expect(page.locator("#lin-steps tbody tr")).to_have_count(3)
    assert page.input_value("[data-key=in]") == "4"
    shot(page, "effects_linear", docs=True, full_page=True)


def test_pooling_offers_only_the_arguments_of_its_operation(page, server):
    open_card(page, server, "pooling")
    drawn(page, "#pool-out")
    expect(page.locator("[data-key=output]")).to_be_disabled()
    expect(page.locator("[data-key=include_pad]")).to_be_disabled()
    expect(page.locator("[data-key=dilation]")).to_be_enabled()
    page.select_option("[data-key=op]", "avg")
    drawn(page, "#pool-out", 2)
    expect(page.locator("[data-key=dilation]")).to_be_disabled()  # AvgPool2d has none
    expect(page.locator("[data-key=include_pad]")).to_be_enabled()
    page.select_option("[data-key=op]", "adaptive_avg")
    drawn(page, "#pool-out", 3)
    for key in ("kernel", "stride", "padding", "ceil", "dilation", "include_pad"):
        expect(page.locator(f"[data-key={key}]")).to_be_disabled()
    expect(page.locator("[data-key=output]")).to_be_enabled()


def test_the_lab_follows_hash_changes(page, server):
    page.goto(f"{server}/effects#tab=pooling")
    drawn(page, "#pool-out")
    page.evaluate("location.hash = '#tab=losses'")
    expect(page.locator("#tab-losses")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-losses")).to_be_visible()
    page.evaluate("location.hash = '#tab=dropout&p=0.3&passes=3'")
    expect(page.locator("#tab-dropout")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#panel-dropout [data-key=p]")).to_have_value("0.3")
    expect(page.locator("#panel-dropout [data-key=passes]")).to_have_value("3")
    page.evaluate("location.hash = '#tab=dropout&p=0.2&passes=3'")  # the same tab, edited
    expect(page.locator("#panel-dropout [data-key=p]")).to_have_value("0.2")


OVERLAPS = """(s) => {
  const fig = document.querySelector(s);
  const legend = fig.querySelector('.legend');
  if (!legend) return [];
  const a = legend.getBoundingClientRect();
  return [...fig.querySelectorAll('.g-xtitle, .g-ytitle, .g-gtitle, .xtick, .ytick')]
    .filter((t) => {
      const b = t.getBoundingClientRect();
      const across = a.left < b.right && b.left < a.right;
      return b.width && across && a.top < b.bottom && b.top < a.bottom;
    })
    .map((t) => t.textContent);
}"""


def test_effects_charts_keep_legends_off_titles_and_axes_readable(page, server):
    page.goto(f"{server}/effects#tab=activations")
    drawn(page, "#act-f")
    assert page.evaluate(OVERLAPS, "#act-f") == []
    page.goto(f"{server}/effects#tab=normalization")
    drawn(page, "#norm-running")
    assert page.evaluate(OVERLAPS, "#norm-running") == []
    ticks = page.eval_on_selector_all("#norm-running .xtick", "ts => ts.map(t => t.textContent)")
    assert ticks and all(t.strip().isdigit() for t in ticks), ticks  # calls are whole numbers
    page.goto(f"{server}/effects#tab=dropout&p=0.4&mode=eval")
    drawn(page, "#drop-zero")
    y = page.evaluate("document.querySelector('#drop-zero')._fullLayout.yaxis.range")
    assert y == [0, 1], "a fraction zeroed runs from 0 to 1"
    notes = page.locator("#drop-notes").inner_text()
    assert "against p = 0." not in notes
    assert "p = 0.4" in notes and "eval" in notes.lower()


TUTORIAL_CASE = """async (name) => {
  const auth = {Authorization: `Bearer ${localStorage.getItem('playground.token')}`,
                'Content-Type': 'application/json'};
  const body = JSON.stringify({preset: 'tutorial'});
  const r = await fetch(`/api/effects/${name}`, {method: 'POST', headers: auth, body});
  return await r.json();
}"""


def test_the_tutorial_buttons_run_the_apis_tutorial_case(page, server):
    page.goto(f"{server}/effects#tab=dropout")
    drawn(page, "#drop-masks")
    options = page.eval_on_selector_all(
        "#panel-dropout [data-key=layer] option", "os => os.map(o => o.value)"
    )
    assert options == ["Dropout", "Dropout1d", "Dropout2d"]  # the API's list, not a copy
    page.click("#drop-tutorial")
    drawn(page, "#drop-masks", 2)
    assert page.input_value("[data-key=p]") == "0.4"
    api = page.evaluate(TUTORIAL_CASE, "dropout")
    masks = [torch.tensor(m["z"]) for m in page.evaluate(DATA, "#drop-masks")]
    want = [torch.tensor(p["mask"]["data"]).reshape(4, 4).float() for p in api["passes"]]
    assert len(masks) == len(want) == 2 and all(map(torch.equal, masks, want))
    page.goto(f"{server}/effects#tab=normalization")
    drawn(page, "#norm-out")
    page.fill("[data-key=scale]", "3")
    drawn(page, "#norm-out", 2)
    page.click("#norm-tutorial")
    drawn(page, "#norm-out", 3)
    api = page.evaluate(TUTORIAL_CASE, "normalization")
    assert api["torch_call"] in page.locator("#norm-call").inner_text()
    assert page.input_value("[data-key=scale]") == "20"


def test_small_maps_print_their_values_in_the_cells(page, server, shot):
    page.goto(f"{server}/effects#tab=pooling")
    drawn(page, "#pool-out")
    x = shown_z(page, "#pool-in")
    cells = page.eval_on_selector_all("#pool-in .hm text", "ts => ts.map(t => t.textContent)")
    assert len(cells) == 36 and cells[0] == f"{x[0, 0].item():.3g}"
    shot(page, "effects_pooling_values")
    page.goto(f"{server}/playground#preset=lenet5&tab=run&run")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    page.click("#stack .block[data-layer=conv1] .block-type")
    expect(page.locator("#act-conv1 .fig")).to_have_attribute("data-interactive", "grid")
    assert page.locator("#act-conv1 .hm text").count() == 0  # 28×28: colours only


def test_linear_by_hand_writes_products_plainly_and_small_matrices_small(page, server):
    page.goto(f"{server}/effects#tab=linear")
    expect(page.locator("#lin-steps tbody tr")).to_have_count(2)
    products = page.locator("#lin-steps tbody tr td").first.inner_text()
    assert "·(−0.004323)" in products and "·-" not in products  # 0.4963·(−0.004323)
    width = page.evaluate("document.querySelector('#lin-w').getBoundingClientRect().width")
    assert width < 400, "a 2×3 matrix is as wide as its numbers"
