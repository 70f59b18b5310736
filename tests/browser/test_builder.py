"""The builder: live shapes and errors from /api/validate, 'auto' sizes, the palette, and
reordering blocks by keyboard and by drag."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser


def block(page: Page, name: str):
    return page.locator(f"#stack .block[data-layer={name}]")


def arg(page: Page, layer: str, name: str):
    return block(page, layer).locator(f".arg[data-arg={name}] input.arg-input")


def order(page: Page) -> list[str]:
    return page.eval_on_selector_all("#stack .block", "bs => bs.map(b => b.dataset.layer)")


def open_lenet(page: Page, server: str) -> None:
    page.goto(f"{server}/playground#preset=lenet5")
    expect(block(page, "fc1").locator(".out-shape")).to_have_text("→ 1×120")


def test_changing_channels_updates_shapes_and_errors_until_auto(page, server, shot):
    open_lenet(page, server)
    # conv1 gives 8 channels: its shape follows; conv2, which expects 6, says so on its block
    arg(page, "conv1", "out_channels").fill("8")
    expect(block(page, "conv1").locator(".out-shape")).to_have_text("→ 1×8×28×28")
    expect(block(page, "pool1").locator(".out-shape")).to_have_text("→ 1×8×14×14")
    expect(block(page, "conv2").locator(".block-error")).to_contain_text("in_channels")
    expect(block(page, "conv2")).to_have_class("block has-error")
    block(page, "conv2").locator(".arg[data-arg=in_channels] .auto-check").check()
    expect(block(page, "conv2").locator(".block-error")).to_be_hidden()
    expect(block(page, "conv2").locator("[data-auto-for=in_channels]")).to_have_text("= 8")

    # conv2 gives 8 channels: the shapes below change and fc1's error appears, in the API's words
    arg(page, "conv2", "out_channels").fill("8")
    expect(block(page, "pool2").locator(".out-shape")).to_have_text("→ 1×8×6×6")
    expect(block(page, "flat").locator(".out-shape")).to_have_text("→ 1×288")
    error = block(page, "fc1").locator(".block-error")
    expect(error).to_have_text(
        "fc1 expects 576 input features, but flat gives 288 (8×6×6). "
        "Set in_features to 288 or use 'auto'."
    )
    expect(block(page, "fc1").locator(".arg[data-arg=in_features]")).to_have_class("arg arg-bad")
    expect(block(page, "fc2").locator(".block-feedback")).to_contain_text("not checked")
    expect(page.locator("#totals")).to_contain_text("Fix fc1")
    block(page, "fc1").evaluate("b => b.scrollIntoView({block: 'center'})")
    shot(page, "builder_error", docs=True)
    page.click("#run-btn")  # refused in the page: the spec is known to be wrong
    expect(page.locator("#run-error")).to_contain_text("fc1 expects 576 input features")

    block(page, "fc1").locator(".arg[data-arg=in_features] .auto-check").check()
    expect(error).to_be_hidden()
    expect(block(page, "fc1").locator("[data-auto-for=in_features]")).to_have_text("= 288")
    expect(block(page, "fc3").locator(".out-shape")).to_have_text("→ 1×10")
    expect(page.locator("#totals")).to_contain_text("parameters")

    # Apply rebuilds: the layers whose args changed are re-initialized, the status says which
    page.click("#apply-btn")
    expect(page.locator("#model-status")).to_contain_text("Re-initialized: conv1, conv2, fc1")


def test_palette_search_add_duplicate_remove_and_reorder(page, server):
    page.goto(f"{server}/playground#new")
    expect(page.locator("#spec-error")).to_contain_text("no layers")
    page.fill("#palette-search", "fully connected")
    items = page.locator(".palette-item")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Linear")
    items.first.click()
    page.fill("#palette-search", "relu")
    page.click(".palette-item[data-type=ReLU]")
    page.fill("#palette-search", "")
    page.click(".palette-item[data-type=Linear]")
    assert order(page) == ["linear1", "relu1", "linear2"]
    expect(block(page, "linear2").locator(".out-shape")).to_have_text("→ 1×2")
    expect(block(page, "linear1").locator("[data-auto-for=in_features]")).to_have_text("= 8")

    block(page, "relu1").get_by_role("button", name="Duplicate relu1").click()
    assert order(page) == ["linear1", "relu1", "relu2", "linear2"]
    block(page, "relu2").get_by_role("button", name="Remove relu2").click()
    assert order(page) == ["linear1", "relu1", "linear2"]

    # keyboard: Alt+Up on a focused block moves it up, and focus follows it
    block(page, "linear2").focus()
    page.keyboard.press("Alt+ArrowUp")
    assert order(page) == ["linear1", "linear2", "relu1"]
    assert page.evaluate("document.activeElement.dataset.layer") == "linear2"
    page.keyboard.press("Alt+ArrowDown")
    assert order(page) == ["linear1", "relu1", "linear2"]

    # drag: the handle of linear2 dropped above linear1
    block(page, "linear2").locator(".drag-handle").drag_to(
        block(page, "linear1"), target_position={"x": 40, "y": 3}
    )
    assert order(page) == ["linear2", "linear1", "relu1"]


def test_input_shape_and_wiring_of_a_merge(page, server):
    page.goto(f"{server}/playground#preset=residual_block")
    expect(block(page, "add").locator(".out-shape")).to_have_text("→ 1×8×16×16")
    selects = block(page, "add").locator(".wire-select")
    expect(selects).to_have_count(2)
    expect(selects.nth(0)).to_have_value("x")
    expect(selects.nth(1)).to_have_value("bn2")
    selects.nth(1).select_option("relu1")
    expect(block(page, "add").locator(".out-shape")).to_have_text("→ 1×8×16×16")
    page.fill(".input-shape", "1, 8, 20, 20")
    expect(block(page, "relu").locator(".out-shape")).to_have_text("→ 1×8×20×20")
    page.fill(".input-shape", "1, 8, y")
    expect(page.locator(".input-row .arg-problem")).to_contain_text("Use sizes")


def test_a_rename_carries_over_to_the_layers_that_read_it(page, server):
    page.goto(f"{server}/playground#preset=residual_block")
    expect(block(page, "add").locator(".out-shape")).to_have_text("→ 1×8×16×16")
    name = page.locator("#stack .block-name").nth(4)
    expect(name).to_have_value("bn2")
    name.fill("")  # through an empty name, and bn1's
    name.press_sequentially("bn1")
    page.keyboard.press("Backspace")
    page.keyboard.type("_second")
    page.keyboard.press("Tab")
    expect(name).to_have_value("bn_second")
    selects = block(page, "add").locator(".wire-select")
    expect(selects.nth(0)).to_have_value("x")
    expect(selects.nth(1)).to_have_value("bn_second")
    expect(block(page, "add").locator(".out-shape")).to_have_text("→ 1×8×16×16")
    expect(page.locator("#spec-error")).to_be_hidden()


def test_wiring_labels_say_what_a_layer_reads(page, server):
    page.goto(f"{server}/playground#preset=residual_block")
    expect(block(page, "add").locator(".out-shape")).to_have_text("→ 1×8×16×16")
    first = page.locator("#stack .block").first
    expect(first.locator(".wire summary")).to_have_text("reads x (the model's input)")
    expect(block(page, "bn1").locator(".wire summary")).to_have_text(
        "reads conv1 (the layer before)"
    )
    labels = block(page, "add").locator(".wire-slot label")
    expect(labels).to_have_text(["input 1", "input 2"])


def test_palette_ranks_by_name_enter_adds_the_best_and_items_drag_in(page, server):
    page.goto(f"{server}/playground#new")
    expect(page.locator("#spec-error")).to_contain_text("no layers")
    page.fill("#palette-search", "sigmo")
    expect(page.locator(".palette-item").first).to_have_attribute("data-type", "Sigmoid")
    page.press("#palette-search", "Enter")
    expect(page.locator("#stack .block")).to_have_count(1)
    assert order(page) == ["sigmoid1"]
    page.fill("#palette-search", "")
    page.locator(".palette-item[data-type=Linear]").drag_to(
        block(page, "sigmoid1"), target_position={"x": 40, "y": 3}
    )
    assert order(page) == ["linear1", "sigmoid1"]  # dropped above sigmoid1


def test_undo_and_redo_of_edits(page, server):
    open_lenet(page, server)
    expect(page.locator("#undo-btn")).to_be_disabled()
    block(page, "relu1").get_by_role("button", name="Remove relu1").click()
    assert "relu1" not in order(page)
    arg(page, "conv2", "out_channels").fill("12")  # one step, however many keys
    expect(block(page, "conv2").locator(".out-shape")).to_have_text("→ 1×12×12×12")
    page.click("#undo-btn")
    expect(arg(page, "conv2", "out_channels")).to_have_value("16")
    page.locator("#stack").click(position={"x": 2, "y": 2})  # not in a text field
    page.keyboard.press("Control+z")
    expect(block(page, "relu1")).to_have_count(1)
    assert order(page)[:3] == ["conv1", "relu1", "pool1"]
    expect(page.locator("#undo-btn")).to_be_disabled()
    page.keyboard.press("Control+Shift+z")
    expect(block(page, "relu1")).to_have_count(0)
    page.click("#redo-btn")
    expect(arg(page, "conv2", "out_channels")).to_have_value("12")
    expect(page.locator("#redo-btn")).to_be_disabled()


def test_my_models_lists_the_workspaces_models_and_opens_one(page, server, shot):
    open_lenet(page, server)
    expect(page.locator("#model-status")).to_contain_text("built")
    page.goto(f"{server}/playground#preset=mlp")  # the same workspace: LeNet stays in it
    expect(page.locator("#model-status")).to_contain_text("built")
    page.click("#my-models > summary")
    items = page.locator("#my-models-list .my-model")
    expect(items).to_have_count(2)
    expect(items.first).to_contain_text("(open)")  # newest first: the MLP, open now
    shot(page, "my_models")
    items.filter(has_text="LeNet").click()
    expect(block(page, "conv1")).to_have_count(1)
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    expect(page.locator("#act-conv1")).to_have_count(1)
    page.click("#my-models > summary")
    expect(items).to_have_count(2)  # Run used the opened model: nothing was rebuilt
    expect(items.filter(has_text="LeNet")).to_contain_text("(open)")
