"""Accessibility and page hygiene: every control has a name, the keyboard reaches the
controls with a visible focus ring, the pages carry no inline script (the CSP forbids it),
user text is never parsed as HTML, and the layout fits a 1366×768 laptop."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]

UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button, [tabindex="0"]')]
  .filter((e) => e.offsetParent !== null || e.getClientRects().length)
  .filter((e) => {
    const named = e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
      || (e.labels && e.labels.length) || e.getAttribute('title');
    const text = ['BUTTON'].includes(e.tagName) && e.textContent.trim();
    return !(named || text);
  })
  .map((e) => e.outerHTML.slice(0, 120))"""


def open_everything(page: Page, server: str) -> None:
    page.goto(f"{server}/playground#preset=lstm_tagger&tab=run")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    for details in page.locator("details").all():
        details.evaluate("d => d.open = true")


def test_every_control_has_a_name(page, server):
    open_everything(page, server)
    assert page.evaluate(UNNAMED) == []
    for tab in ["inspect", "code", "share"]:
        page.click(f"#tab-{tab}")
        page.wait_for_timeout(300)
        assert page.evaluate(UNNAMED) == [], tab
    page.goto(f"{server}/")
    assert page.evaluate(UNNAMED) == []


def test_keyboard_reaches_the_builder_with_a_visible_focus(page, server):
    page.goto(f"{server}/playground#preset=lenet5")
    expect(page.locator("#model-status")).to_contain_text("built")
    page.focus("#stack .block[data-layer=conv1]")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid", "a visible focus ring"
    page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.dataset.layer") == "relu1"
    page.keyboard.press("Enter")  # Enter on a block jumps to its activation (here: asks for a run)
    expect(page.locator("#model-status")).to_contain_text("Run the model to see relu1")
    page.focus("#tab-run")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-inspect")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#view-inspect")).to_be_visible()


def test_user_text_is_text_not_html(page, server):
    page.goto(f"{server}/playground#preset=linear_3_2")
    page.fill("#model-inputs .labels-input", "<img src=x onerror=alert(1)>, <b>bold</b>")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    expect(page.locator("#results .pred-label")).to_have_text(re.compile("^<"))
    assert page.locator("#results img, #results b").count() == 0
    figure = page.locator("#out-linear .fig")  # drawn lazily, once in view
    figure.scroll_into_view_if_needed()
    expect(figure).to_have_attribute("data-drawn", "bars")
    ticks = [t.text_content() for t in page.locator("#out-linear .xtick text").all()]
    assert "<b>bold</b>" in ticks, "Plotly shows the label as typed"


def test_pages_have_no_inline_script_and_no_console_log():
    for html in (ROOT / "templates").glob("*.html"):
        text = html.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), html.name
        assert not re.search(r"\son[a-z]+=", text), f"inline handler in {html.name}"
    for js in (ROOT / "static" / "js").glob("*.js"):
        text = js.read_text()
        assert "console.log" not in text, js.name
        assert "innerHTML" not in text.replace("never innerHTML", ""), js.name


def test_the_pages_default_input_maker_is_the_servers():
    """run_panel.js mirrors models.inputs.DEFAULT_MAKER (the page shows it in the form)."""
    from models.inputs import DEFAULT_MAKER

    text = (ROOT / "static" / "js" / "run_panel.js").read_text()
    found = re.search(r"const DEFAULT_MAKER = (\{.*?\});", text)
    assert found, "run_panel.js defines DEFAULT_MAKER once"
    as_json = re.sub(r"(\w+):", r'"\1":', found.group(1))
    assert json.loads(as_json) == DEFAULT_MAKER
    assert text.count('distribution: "normal"') == 1


def test_layout_fits_a_laptop_and_a_projector(page, server, shot):
    page.goto(f"{server}/playground#preset=lenet5&tab=run&focus=conv1")
    expect(page.locator("#model-status")).to_contain_text("built")
    page.click("#run-btn")
    expect(page.locator("#act-conv1 .fig")).to_have_attribute("data-drawn", "grid")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, "no sideways scrolling at 1366×768"
    page.click("#big-type")
    expect(page.locator("html")).to_have_class("big-type")
    page.click("#stack .block[data-layer=conv1] .block-type")
    expect(page.locator("#act-conv1 .fig")).to_have_attribute("data-drawn", "grid")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    shot(page, "projector_large_type")


FITS = """(sel) => {
  const fig = document.querySelector(sel);
  const svg = fig.querySelector('.main-svg');
  return [Math.round(svg.getBoundingClientRect().width), Math.round(fig.clientWidth)];
}"""


def chart_fits(page, sel: str) -> bool:
    """Poll (no wait_for_function: the CSP refuses its eval) until the chart is its box's width."""
    for _ in range(50):
        chart, box = page.evaluate(FITS, sel)
        if chart == box:
            return True
        page.wait_for_timeout(200)
    return False


def test_charts_re_lay_out_when_the_type_size_changes(page, server):
    page.goto(f"{server}/playground#preset=lenet5&tab=run&focus=conv1")
    expect(page.locator("#model-status")).to_contain_text("built")
    page.click("#run-btn")
    fig = "#act-conv1 .fig"
    expect(page.locator(fig)).to_have_attribute("data-interactive", "grid")
    assert chart_fits(page, fig)
    before = page.evaluate(FITS, fig)
    page.click("#big-type")
    expect(page.locator("html")).to_have_class("big-type")
    assert page.evaluate(FITS, fig)[1] != before[1], "the large type moved the chart's box"
    assert chart_fits(page, fig), "the chart follows its box: it does not overlap the stats"
    page.click("#big-type")
    expect(page.locator("html")).not_to_have_class("big-type")
    assert chart_fits(page, fig), "and grows back when the type is normal again"
    assert page.evaluate(FITS, fig) == before


def test_a_narrow_screen_starts_with_the_palette_folded(page, server):
    page.set_viewport_size({"width": 700, "height": 900})
    page.goto(f"{server}/playground#preset=lenet5")
    expect(page.locator("#model-status")).to_contain_text("built")
    expect(page.locator("#palette-panel")).to_be_hidden()
    expect(page.locator("#toggle-palette")).to_have_attribute("aria-expanded", "false")
    page.click("#toggle-palette")
    expect(page.locator("#palette-panel")).to_be_visible()
    expect(page.locator("#toggle-palette")).to_have_attribute("aria-expanded", "true")
    assert page.evaluate("document.documentElement.scrollWidth") <= 700
