"""The Train tab in Chromium: a lesson card trains LeNet-5 on Fashion-MNIST (the loss curve
gets its points, test accuracy above chance), the time slider shows conv1's maps at a
checkpoint equal to what the API returns for that step, a clicked conv cell computed by hand
equals the map's value, the spiral's decision boundary is drawn, and a share link replays
the same training (the same curve) in a second browser context."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

API_PARAMS = """async (ref) => {
  const token = localStorage.getItem("playground.token");
  const auth = {Authorization: `Bearer ${token}`};
  const id = (await (await fetch("/api/models", {headers: auth})).json()).models[0].id;
  const query = ref ? `?training=${ref.training}&step=${ref.step}` : "";
  const res = await fetch(`/api/models/${id}/parameters${query}`, {headers: auth});
  return (await res.json()).rows.find((r) => r.name === "conv1.weight");
}"""
API_RUN = """async ([ref, sample]) => {
  const token = localStorage.getItem("playground.token");
  const auth = {Authorization: `Bearer ${token}`};
  const id = (await (await fetch("/api/models", {headers: auth})).json()).models[0].id;
  const body = {inputs: {x: sample}, capture: ["conv1"], encoding: "list", stats: false,
    checkpoint: ref};
  const res = await fetch(`/api/models/${id}/run`, {method: "POST", body: JSON.stringify(body),
    headers: {...auth, "Content-Type": "application/json"}});
  return (await res.json()).activations.conv1.tensor.data[0];
}"""


def train(page: Page, steps: int, eval_every: int) -> None:
    expect(page.locator("#train-start")).to_be_enabled()
    page.fill("#train-length", str(steps))
    page.locator("#train-length").dispatch_event("change")
    page.fill("#train-eval", str(eval_every))
    page.locator("#train-eval").dispatch_event("change")
    page.click("#train-start")
    expect(page.locator("#train")).to_have_attribute("data-trained", "done", timeout=120_000)


def trace(page: Page, div: str, i: int, axis: str = "y") -> list:
    return page.evaluate(f"() => document.getElementById('{div}').data[{i}].{axis}")


SERVER_STEP = """async () => {
  const auth = {Authorization: `Bearer ${localStorage.getItem("playground.token")}`};
  const id = (await (await fetch("/api/models", {headers: auth})).json()).models[0].id;
  const ts = (await (await fetch(`/api/models/${id}/trainings`, {headers: auth})).json());
  return ts.trainings[0].step;
}"""


def settled(page: Page) -> int:
    """Once the paused training's last events are drawn: its step (= the points drawn)."""
    for _ in range(100):
        step = page.evaluate(SERVER_STEP)
        if len(trace(page, "chart-loss", 0)) == step:
            return step
        page.wait_for_timeout(100)
    raise AssertionError("the drawn steps never caught up with the training")


def test_lenet_lesson_trains_slides_and_convolves_by_hand(page, server, shot):
    page.goto(server)
    page.click("[data-lesson=lenet5_fashion]")
    expect(page.locator("#tab-train")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#untrained-badge")).to_be_visible()
    train(page, 30, 15)
    assert trace(page, "chart-loss", 0, "x") == list(range(1, 31))
    assert [s for s in trace(page, "chart-loss", 1, "x")] == [15, 30]
    accuracy = trace(page, "chart-acc", 1)[-1]
    assert accuracy > 0.2, accuracy  # ten classes: chance is 0.1
    expect(page.locator("#train-status")).to_contain_text("done")
    expect(page.locator("#at-step")).to_have_attribute("data-drawn", "30:0")
    expect(page.locator("#untrained-badge")).to_be_hidden()
    shot(page, "train_lenet_30_steps", full_page=True)

    # the time slider: back to the checkpoint at step 1, then step 0 (untrained again)
    steps = page.evaluate("() => document.getElementById('time-slider').max")
    assert int(steps) >= 3
    for index, step in ((1, 1), (0, 0)):
        page.locator("#time-slider").fill(str(index))
        expect(page.locator("#time-step")).to_have_text(f"step {step}")
        expect(page.locator("#at-step")).to_have_attribute("data-drawn", f"{step}:0")
        shown = page.evaluate("() => document.getElementById('conv-maps').data.map(t => t.z)")
        body = page.evaluate("() => document.getElementById('at-step').lastBody")
        sample, ref = body["inputs"]["x"], body["checkpoint"]
        assert ref["step"] == step
        want = page.evaluate(API_RUN, [ref, sample])
        assert shown == want
    expect(page.locator("#untrained-badge")).to_be_visible()

    # the parameter table follows the slider: conv1.weight's statistics at step 0
    page.click("#tab-inspect")
    expect(page.locator("#params-at-step")).to_contain_text("step 0")
    want = page.evaluate(API_PARAMS, ref)
    now = page.evaluate(API_PARAMS, None)
    assert want["mean"] != now["mean"]  # 30 steps of Adam moved it
    cells = page.locator('tr[data-param="conv1.weight"] td.num')
    stats = [float(c) for c in cells.all_text_contents()[1:3]]  # count, mean, std, min, max
    assert stats == pytest.approx([want["mean"], want["std"]], rel=1e-3)
    page.click("#tab-train")

    # convolution by hand: click one cell of the first map
    page.locator("#conv-maps").scroll_into_view_if_needed()
    box = page.locator("#conv-maps .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    expect(page.locator("#hand-result")).to_be_visible()
    channel, row, col = map(int, page.locator("#conv-hand").get_attribute("data-cell").split(","))
    assert channel == 0
    value = float(page.locator("#hand-value").text_content())
    assert value == shown[0][row][col]
    assert float(page.locator("#hand-result").text_content()) == pytest.approx(value, abs=1e-5)
    shot(page, "train_conv_by_hand", full_page=True)

    # the Run tab runs the slider's step; a misclassified test sample is found and shown
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    expect(page.locator("#untrained-note")).to_be_visible()
    page.click("#tab-train")
    page.click("#sample-wrong")
    expect(page.locator("#sample-pred")).to_have_class("error-text")
    # the gallery of misclassified test samples: one clicked becomes the sample shown
    item = page.locator("#gallery .gallery-item").first
    index = item.get_attribute("data-index")
    page.fill("#sample-index", "0")
    item.click()
    expect(page.locator("#sample-index")).to_have_value(index)
    expect(page.locator("#at-step")).to_have_attribute("data-drawn", f"0:{index}")
    expect(page.locator("#sample-pred")).to_have_class("error-text")


def test_pause_one_step_stop_and_reset(page, server):
    page.goto(f"{server}/playground#lesson=spiral_linear")
    expect(page.locator("#train-start")).to_be_enabled()
    page.fill("#train-length", "100000")
    page.locator("#train-length").dispatch_event("change")
    page.click("#train-start")
    expect(page.locator("#train-pause")).to_be_enabled()
    page.click("#train-pause")
    expect(page.locator("#train-status")).to_contain_text("paused")
    expect(page.locator("#train-step")).to_be_enabled()
    before = settled(page)
    page.click("#train-step")
    page.wait_for_function(
        "(n) => document.getElementById('chart-loss').data[0].x.length === n + 1", arg=before
    )
    assert trace(page, "chart-loss", 0, "x")[-1] == before + 1
    page.click("#train-cancel")
    expect(page.locator("#train")).to_have_attribute("data-trained", "cancelled")
    expect(page.locator("#train-reset")).to_be_enabled()
    page.click("#train-reset")
    expect(page.locator("#time-step")).to_have_text("step 0")
    expect(page.locator("#untrained-badge")).to_be_visible()


def test_spiral_boundary_and_a_shared_link_replays_the_curve(new_page, server, shot):
    page = new_page()
    page.goto(f"{server}/playground#lesson=spiral_mlp")
    expect(page.locator("#train-form")).to_be_visible()
    train(page, 60, 30)
    expect(page.locator("#train-boundary")).to_have_attribute("data-step", "60")
    z = page.evaluate("() => document.getElementById('train-boundary').data[0].z")
    assert len(z) == 48 and len({round(v, 3) for row in z for v in row}) > 10  # not flat
    first = trace(page, "chart-loss", 0)
    assert len(first) == 60
    # weight histograms over time: one column per recorded step (every 2nd of 60)
    assert trace(page, "chart-hist", 0, "x") == list(range(2, 61, 2))
    shot(page, "train_spiral_60_steps")
    page.wait_for_function("() => location.hash.startsWith('#z=')")
    link = page.url

    other = new_page()
    other.goto(link)
    expect(other.locator("#tab-train")).to_have_attribute("aria-selected", "true")
    expect(other.locator("#train-length")).to_have_value("60")
    other.click("#train-start")
    expect(other.locator("#train")).to_have_attribute("data-trained", "done", timeout=120_000)
    assert trace(other, "chart-loss", 0) == first
    assert re.search(r"spiral", other.locator("#train-dataset").input_value())
