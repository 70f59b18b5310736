"""Share: the whole page state in the URL hash. A link opened in a fresh browser context
(no token, no cache, a new workspace) restores the same model and the same activations;
hide= flags hide panels for a focused lesson link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

FIGS = ["#act-conv1 .fig", "#act-pool2 .fig", "#out-fc3 .fig"]


def drawn_values(page: Page) -> dict[str, list]:
    """The numbers Plotly holds for conv1, pool2 and the output (z of heatmaps, y of bars)."""
    values = {}
    for sel in FIGS:
        layer = sel.split()[0][1:].split("-", 1)[1]
        if sel.startswith("#act-"):
            page.click(f"#stack .block[data-layer={layer}] .block-type")
        else:
            page.locator(sel).scroll_into_view_if_needed()
        expect(page.locator(sel)).to_have_attribute(
            "data-interactive", "grid" if "act-" in sel else "bars"
        )
        values[sel] = page.evaluate(
            "(s) => document.querySelector(s).data.map(t => t.z || t.y)", sel
        )
    return values


def builder_spec(page: Page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        "#stack .block",
        "bs => bs.map(b => [b.dataset.layer, b.querySelector('.block-type').textContent])",
    )


def test_share_link_restores_model_and_activations(new_page, server, shot):
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"{server}/playground#preset=lenet5")
    expect(page.locator("#model-status")).to_contain_text("built")
    # make it ours: another weights seed, a uniform input with seed 7, conv2 with 12 channels
    page.fill("#weights-seed", "3")
    page.select_option("#run-controls .maker select >> nth=1", "uniform")
    page.fill("#run-controls [data-role=input-seed]", "7")
    page.locator("#stack .block[data-layer=conv2] .arg[data-arg=out_channels] input").fill("12")
    page.locator("#stack .block[data-layer=fc1] .arg[data-arg=in_features] .auto-check").check()
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    first = drawn_values(page)
    assert len(first["#act-pool2 .fig"]) == 12

    page.click("#tab-share")
    page.check("[data-hide=code]")
    page.click("#copy-link")
    expect(page.locator("#share .copy-status")).to_have_text("Copied.")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == page.input_value("#share-link")
    assert "token" not in link and "z=" in link and link.endswith("&hide=code")
    shot(page, "share")

    other = new_page()  # a fresh context: empty localStorage and cache, so a new workspace
    other.goto(link)
    expect(other.locator("#model-status")).to_contain_text("Ran in")  # it runs on open
    assert builder_spec(other) == builder_spec(page)
    assert other.input_value("#weights-seed") == "3"
    assert other.input_value("#run-controls [data-role=input-seed]") == "7"
    expect(other.locator("#tab-code")).to_be_hidden()
    expect(other.locator("#tab-run")).to_have_attribute("aria-selected", "true")  # not Share
    assert drawn_values(other) == first
    token = other.evaluate("localStorage.getItem('playground.token')")
    assert token and token != page.evaluate("localStorage.getItem('playground.token')")


def test_a_link_copied_on_share_opens_on_run_or_the_tab_chosen(new_page, server):
    page = new_page()
    page.goto(f"{server}/playground#preset=lenet5&tab=share")
    expect(page.locator("#model-status")).to_contain_text("built")
    expect(page.locator("#share-link")).to_have_value(re.compile("z="))
    other = new_page()
    other.goto(page.input_value("#share-link"))
    expect(other.locator("#tab-run")).to_have_attribute("aria-selected", "true")
    page.select_option("#share-tab", "inspect")
    expect(page.locator("#share-link")).not_to_have_value(other.url)
    other = new_page()
    other.goto(page.input_value("#share-link"))
    expect(other.locator("#tab-inspect")).to_have_attribute("aria-selected", "true")
    # the address bar, copied while Share is open, opens on Run too
    expect(page).to_have_url(re.compile("z="))
    other = new_page()
    other.goto(page.url)
    expect(other.locator("#tab-run")).to_have_attribute("aria-selected", "true")


def test_lesson_link_hides_panels(page, server, shot):
    page.goto(f"{server}/playground#preset=lenet5&tab=run&focus=pool2")
    expect(page.locator("#model-status")).to_contain_text("built")
    # not wait_for_function: its polling evaluates a string, which the CSP (no unsafe-eval)
    # refuses in the page
    expect(page).to_have_url(re.compile(r"/playground#z="))
    state = page.evaluate("location.hash")
    page.goto(f"{server}/playground{state}&hide=palette,builder,code,inspect")
    expect(page.locator("#palette-panel")).to_be_hidden()
    expect(page.locator("#builder-panel")).to_be_hidden()
    expect(page.locator("#tab-code")).to_be_hidden()
    expect(page.locator("#tab-inspect")).to_be_hidden()
    page.click("#run-btn")
    expect(page.locator("#act-pool2 .fig")).to_have_attribute("data-drawn", "grid")
    shot(page, "lesson_link", docs=True)


def test_share_warns_when_kept_weights_differ_from_the_seed(page, server):
    page.goto(f"{server}/playground#preset=lenet5&tab=share")
    expect(page.locator("#model-status")).to_contain_text("built")
    page.locator("#stack .block[data-layer=conv1] .arg[data-arg=out_channels] input").fill("8")
    page.locator("#stack .block[data-layer=conv2] .arg[data-arg=in_channels] .auto-check").check()
    page.click("#apply-btn")  # conv1 and conv2 are new; fc1..fc3 keep their old weights
    expect(page.locator("#model-status")).to_contain_text("Re-initialized: conv1, conv2")
    warning = page.locator("#share .warn")
    expect(warning).to_contain_text("kept their weights")
    warning.get_by_role("button").click()
    expect(page.locator("#model-status")).to_contain_text("built (v1")
    expect(warning).to_be_hidden()
