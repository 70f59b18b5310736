"""Inspect and Code: print(model), the parameter table with its freeze toggles, a
parameter's values as a heatmap of kernels, and the exported class with its copy button."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from models.build import build
from models.presets import PRESETS

pytestmark = pytest.mark.browser


def test_freeze_a_layer_and_see_requires_grad_change(page, server, shot):
    page.goto(f"{server}/playground#preset=lenet5&tab=inspect")
    tree = page.locator("#module-tree")
    expect(tree).to_have_text(str(build(PRESETS["lenet5"].spec, seed=0).model))
    table = page.locator("#param-table")
    weight = table.locator("tr[data-param='conv1.weight']")
    expect(weight.locator(".grad-value")).to_have_text("True")
    expect(table.locator("tfoot")).to_contain_text("81,290 trainable · 0 frozen")

    page.get_by_label("Train every parameter of conv1").uncheck()
    expect(weight.locator(".grad-value")).to_have_text("False")
    expect(table.locator("tr[data-param='conv1.bias'] .grad-value")).to_have_text("False")
    expect(table.locator("tfoot")).to_contain_text("81,134 trainable · 156 frozen")
    expect(page.locator("#summary-table tr", has_text="conv1").locator("td").nth(3)).to_have_text(
        "0"
    )

    page.get_by_label("requires_grad of conv1.bias").check()  # one parameter at a time
    expect(table.locator("tr[data-param='conv1.bias'] .grad-value")).to_have_text("True")
    expect(table.locator("tfoot")).to_contain_text("81,140 trainable · 150 frozen")
    expect(page.get_by_label("Train every parameter of conv1")).to_have_js_property(
        "indeterminate", True
    )

    page.get_by_role("button", name="Show the values of conv2.weight").click()
    fig = page.locator("#param-fig")
    expect(fig).to_have_attribute("data-drawn", "kernels")
    z = page.evaluate("document.querySelector('#param-fig').data[0].z")
    assert (len(z), len(z[0])) == (6 * 4 - 1, 16 * 4 - 1), "16×6 kernels of 3×3, one gap apart"
    fig.scroll_into_view_if_needed()
    shot(page, "inspect_kernels", docs=True)
    page.locator("#summary-box").scroll_into_view_if_needed()
    shot(page, "inspect_tree")


def test_code_view_and_copy(new_page, server):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"{server}/playground#preset=tiny_model&tab=code")
    code = page.locator("#code-text")
    expect(code).to_contain_text("class TinyModel(nn.Module):")
    page.click("#copy-code")
    expect(page.locator(".copy-status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == code.inner_text()
