"""Running inputs: a sentence through the LSTM tagger (one tag per word, checked against
plain torch), a digit drawn with the mouse, a tensor typed in, and train/eval mode."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from playwright.sync_api import Page, expect

from models.build import build
from models.inputs import tokenize
from models.presets import PRESETS, TAGS

pytestmark = pytest.mark.browser


def torch_tags(sentence: str) -> list[str]:
    """The oracle: the preset tagger built with seed 0, run on the sentence's indices."""
    preset = PRESETS["lstm_tagger"]
    model = build(preset.spec, seed=preset.seed).model.eval()
    ids, _ = tokenize(sentence, preset.spec["inputs"]["sentence"]["vocab"])
    with torch.no_grad():
        scores = model(torch.tensor(ids))
    return [TAGS[int(i)] for i in scores.argmax(dim=1)]


def run(page: Page) -> None:
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")


def test_tagger_tags_every_word_of_a_typed_sentence(page, server, shot, problems):
    page.goto(f"{server}/")
    page.click("a[data-preset=lstm_tagger]")
    sentence = "Everybody read that book"
    page.fill("input.sentence", sentence)
    run(page)
    pairs = page.locator("#results .tags .tag-pair")
    expect(pairs).to_have_count(4)
    words = pairs.locator(".tag-word").all_inner_texts()
    tags = pairs.locator(".tag-label").all_inner_texts()
    assert words == sentence.split()
    assert tags == torch_tags(sentence)
    # the LSTM's hidden and cell states are drawn as extras of its card
    page.click("#stack .block[data-layer=lstm] .block-type")
    expect(page.locator("#act-lstm .extra[data-extra=h_n] .fig")).to_have_attribute(
        "data-drawn", "bars"
    )
    expect(page.locator("#act-lstm .extra[data-extra=c_n] .fig")).to_have_attribute(
        "data-drawn", "bars"
    )
    page.locator("#results").evaluate("r => r.closest('.panel').scrollTo(0, 0)")
    shot(page, "lstm_tagger", docs=True)

    page.fill("input.sentence", "The dog read the apple")
    expect(pairs).to_have_count(5)  # the page re-runs when the input changes
    assert pairs.locator(".tag-label").all_inner_texts() == torch_tags("The dog read the apple")

    problems.allow("status of 422")  # the API refuses the unknown word, and says why
    page.fill("input.sentence", "The cat")
    expect(page.locator("#run-error")).to_contain_text("'cat'")


def test_drawn_digit_and_typed_tensor(page, server, shot):
    page.goto(f"{server}/playground#preset=lenet5")
    page.select_option("#run-controls .kind-select", "draw")
    pad = page.locator("canvas.draw-pad")
    box = pad.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for t in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.07 * t))
    page.mouse.up()
    run(page)
    page.click("#stack .block[data-layer=conv1] .block-type")
    page.locator("#act-x").scroll_into_view_if_needed()
    expect(page.locator("#act-x .fig")).to_have_attribute("data-drawn", "heatmap")
    image = page.evaluate("document.querySelector('#act-x .fig').data[0].z")
    column = [row[16] for row in image]
    assert max(column) > 0.9 and min(column) == 0.0, "a white stroke down the black middle"
    assert max(image[0]) == 0.0, "the top row stays black"
    shot(page, "drawn_digit", docs=True)

    page.goto(f"{server}/playground#preset=linear_3_2")
    page.select_option("#run-controls .kind-select", "tensor")
    page.fill("#run-controls textarea.tensor-json", "[[1, 2, 3]]")
    run(page)
    figure = page.locator("#out-linear .fig")  # drawn when it comes into view, after the run
    figure.scroll_into_view_if_needed()
    expect(figure).to_have_attribute("data-drawn", "bars")
    out = page.evaluate("document.querySelector('#out-linear .fig').data[0].y")
    weights = build(PRESETS["linear_3_2"].spec, seed=0).model.linear
    expected = weights(torch.tensor([[1.0, 2.0, 3.0]]))[0].tolist()
    assert out == pytest.approx(expected, abs=2e-3)


def test_uploaded_png_becomes_the_input(page, server, tmp_path):
    img = Image.new("L", (64, 64), 0)
    img.paste(255, (16, 16, 48, 48))  # a white square on black, scaled to 32×32
    path = tmp_path / "square.png"
    img.save(path)
    page.goto(f"{server}/playground#preset=lenet5")
    page.select_option("#run-controls .kind-select", "upload")
    page.set_input_files("#run-controls input[type=file]", str(path))
    expect(page.locator("#run-controls .field-hint")).to_contain_text("An image is loaded")
    run(page)
    page.click("#stack .block[data-layer=conv1] .block-type")
    page.locator("#act-x").scroll_into_view_if_needed()
    expect(page.locator("#act-x .fig")).to_have_attribute("data-drawn", "heatmap")
    z = page.evaluate("document.querySelector('#act-x .fig').data[0].z")
    assert (len(z), len(z[0])) == (32, 32)
    assert z[16][16] == 1.0 and z[0][0] == 0.0 and z[31][31] == 0.0


def test_train_mode_turns_dropout_on(page, server):
    page.goto(f"{server}/playground#preset=mlp")
    run(page)
    page.click("#stack .block[data-layer=dropout] .block-type")
    expect(page.locator("#act-dropout .fig")).to_have_attribute("data-drawn", "bars")
    eval_zeros = page.locator("#act-dropout .stats").inner_text()
    page.check("input[name=run-mode][value=train]")
    expect(page.locator("#results .run-meta")).to_contain_text("train mode")
    page.click("#stack .block[data-layer=dropout] .block-type")
    expect(page.locator("#act-dropout .fig")).to_have_attribute("data-drawn", "bars")
    train_zeros = page.locator("#act-dropout .stats").inner_text()
    assert eval_zeros != train_zeros


def test_tensor_template_has_the_declared_shape_and_waits_for_run(page, server):
    page.goto(f"{server}/playground#preset=lenet5")
    run(page)
    runs = []
    page.on("request", lambda r: runs.append(r.url) if r.url.endswith("/run") else None)
    page.select_option("#run-controls .kind-select", "tensor")
    template = page.input_value("#run-controls textarea.tensor-json")
    assert torch.tensor(json.loads(template)).shape == (1, 1, 32, 32)
    page.wait_for_timeout(1000)  # longer than the re-run's debounce: nothing may be sent
    assert runs == []
    expect(page.locator("#run-error")).to_be_hidden()
    run(page)
    assert len(runs) == 1
    expect(page.locator("#run-error")).to_be_hidden()


def test_no_prediction_says_why(page, server):
    page.goto(f"{server}/playground#preset=lenet5")
    page.locator("#stack .block[data-layer=fc3] .arg[data-arg=out_features] input").fill("5")
    run(page)
    expect(page.locator("#out-fc3 .prediction")).to_contain_text(
        "the model gives 5 scores but there are 10 class labels"
    )


DROP_MODELS = """async () => {
  const auth = {Authorization: `Bearer ${localStorage.getItem('playground.token')}`};
  const {models} = await (await fetch('/api/models', {headers: auth})).json();
  for (const m of models) await fetch(`/api/models/${m.id}`, {method: 'DELETE', headers: auth});
  return models.length;
}"""


def test_a_model_the_server_let_go_is_rebuilt_from_its_spec(page, server, problems):
    """Another tab of the same browser filled the workspace, so this tab's model was deleted
    to make room: Run, Inspect and Code rebuild it from the spec and seed, and say so."""
    problems.allow("404 (Not Found)")  # each first try, before the rebuild
    page.goto(f"{server}/playground#preset=lenet5")
    expect(page.locator("#model-status")).to_contain_text("built")
    assert page.evaluate(DROP_MODELS) == 1
    run(page)
    expect(page.locator("#results .act-card")).not_to_have_count(0)
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    assert page.evaluate(DROP_MODELS) == 1
    page.click("#tab-inspect")
    expect(page.locator("#model-status")).to_contain_text("rebuilt from its spec and seed")
    expect(page.locator("#module-tree")).to_have_text(
        str(build(PRESETS["lenet5"].spec, seed=0).model)
    )
    assert page.evaluate(DROP_MODELS) == 1
    page.click("#tab-code")
    expect(page.locator("#code")).to_contain_text("class LeNet(nn.Module)")


def test_a_server_that_went_away_is_said_in_words_and_the_page_recovers(page, server, problems):
    problems.allow("net::ERR_FAILED")
    page.goto(f"{server}/playground#preset=lenet5")
    run(page)
    page.click("#tab-inspect")
    expect(page.locator("#module-tree")).to_contain_text("LeNet(")
    page.click("#tab-run")
    gone = lambda route: route.abort()  # noqa: E731
    page.route("**/api/**", gone)
    page.route("**/healthz", gone)
    page.click("#run-btn")
    expect(page.locator("#run-error")).to_contain_text("The server cannot be reached")
    assert "Failed to fetch" not in page.locator("#model-status").inner_text()
    expect(page.locator("#results")).to_have_class("results stale")  # greyed: not current
    page.click("#tab-inspect")
    expect(page.locator("#module-tree")).to_contain_text("LeNet(")  # still there, not white
    page.click("#tab-run")
    page.unroute("**/api/**")
    page.unroute("**/healthz")
    expect(page.locator("#model-status")).to_contain_text("Ran in")  # it ran again by itself
    expect(page.locator("#results")).to_have_class("results")


def test_the_mode_switch_says_train_mode_moves_batchnorm_statistics(page, server):
    page.goto(f"{server}/playground#preset=residual_block")
    note = page.locator("#run-controls #train-note")
    expect(note).to_contain_text("updates the running statistics of bn1, bn2")
    page.goto(f"{server}/playground#preset=mlp")
    expect(page.locator("#run-controls .maker")).to_have_count(1)
    expect(note).to_have_count(0)  # no BatchNorm, nothing to say


def test_the_taggers_class_layers_name_their_columns_by_tag(page, server):
    page.goto(f"{server}/playground#preset=lstm_tagger&tab=run&run")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    for layer in ("hidden2tag", "log_softmax"):
        page.click(f"#stack .block[data-layer={layer}] .block-type")
        fig = page.locator(f"#act-{layer} .fig")
        expect(fig).to_have_attribute("data-drawn", "heatmap")
        ticks = fig.evaluate("f => f.layout.xaxis.ticktext")
        assert ticks == TAGS
    page.click("#stack .block[data-layer=lstm] .block-type")
    lstm = page.locator("#act-lstm > .act-body .fig")
    expect(lstm).to_have_attribute("data-drawn", "heatmap")
    assert lstm.evaluate("f => f.layout.xaxis.ticktext") is None  # 6 hidden units: no tags


def test_attention_maps_name_their_axes(page, server, shot):
    page.goto(f"{server}/playground#preset=transformer_classifier&tab=run&run")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    extra = page.locator(".extra[data-extra^=attn]").first
    extra.scroll_into_view_if_needed()
    fig = extra.locator(".fig")
    expect(fig).to_have_attribute("data-drawn", "grid")
    x, y = fig.evaluate("f => [f.layout.xaxis, f.layout.yaxis]")
    # rows (queries, by word) attend to columns (keys, by word too)
    assert x["ticktext"] == y["ticktext"] and len(x["ticktext"]) == 16
    extra.scroll_into_view_if_needed()
    shot(page, "attention_axes")
