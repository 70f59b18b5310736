"""The page draws maps from u8 (one byte per value) and shows numbers only from exact float32
values fetched on demand, checked against the u8 payload's exact_crc32 (static/js/exact.js).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from playwright.sync_api import Route, expect

from tests.browser.test_lenet import lenet_activations

pytestmark = pytest.mark.browser

HOVER_LINES = (
    "(s) => [...document.querySelectorAll(s + ' .hovertext tspan.line')].map(t => t.textContent)"
)


def _run_lenet(page, server) -> list[dict]:
    """Open LeNet, run it, and keep every run request's body."""
    bodies: list[dict] = []
    page.on(
        "request",
        lambda r: bodies.append(json.loads(r.post_data)) if r.url.endswith("/run") else None,
    )
    page.goto(f"{server}/playground#preset=lenet5&tab=run")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    page.click("#stack .block[data-layer=conv1] .block-type")
    page.wait_for_selector("#act-conv1 .fig[data-interactive=grid]")
    return bodies


def test_the_page_asks_u8_and_a_hover_says_the_exact_value_is_coming(page, server, shot):
    bodies = _run_lenet(page, server)
    assert [b["encoding"] for b in bodies] == ["u8"]
    release = []  # hold the exact answer back until the loading label has been seen
    page.route("**/run", lambda route: release.append(route))
    page.hover("#act-conv1 .fig .nsewdrag >> nth=1", position={"x": 30, "y": 30})
    page.wait_for_selector("#act-conv1 .fig .hovertext")
    assert page.evaluate(HOVER_LINES, "#act-conv1 .fig")[-1] == "exact value: loading…"
    shot(page, "exact_loading")
    while not release:
        page.wait_for_timeout(50)
    (asked,) = release
    body = json.loads(asked.request.post_data)
    assert (body["capture"], body["encoding"], body["stats"]) == (["conv1"], "f32", False)
    asked.continue_()
    page.wait_for_selector("#act-conv1 .fig[data-exact=true]")
    page.mouse.move(0, 0)
    page.hover("#act-conv1 .fig .nsewdrag >> nth=1", position={"x": 30, "y": 30})
    page.wait_for_selector("#act-conv1 .fig .hovertext")
    title, _, value = page.evaluate(HOVER_LINES, "#act-conv1 .fig")
    assert title == "ch 1" and float(value) == float(value)  # a number now
    shot(page, "exact_hover")


def test_exact_values_that_are_not_the_ones_drawn_are_refused(page, server):
    """An answer whose bytes differ from the drawn map's (the model changed in between) is
    never shown: the figure keeps its u8 colours and says to run again, and so does a
    download."""
    _run_lenet(page, server)

    def tamper(route: Route) -> None:
        answer = route.fetch().json()
        tensor = answer["activations"]["conv1"]["tensor"]
        data = tensor["data"]
        tensor["data"] = ("B" if data[0] == "A" else "A") + data[1:]  # other first value
        route.fulfill(json=answer)

    page.route("**/run", tamper)
    page.hover("#act-conv1 .fig .nsewdrag >> nth=0", position={"x": 30, "y": 30})
    page.wait_for_selector("#act-conv1 .fig[data-exact=failed]")
    expect(page.locator("#act-conv1 .fig-col .note")).to_contain_text(
        "The model changed since this run"
    )
    page.click("#act-conv1 button[aria-label='Download conv1 as JSON']")
    expect(page.locator("#act-conv1 .downloads .note")).to_contain_text("run it again")


def test_downloads_are_exact_from_a_u8_run(page, server):
    _run_lenet(page, server)
    expected = lenet_activations(seed=0)
    with page.expect_download() as info:
        page.click("#act-conv1 button[aria-label='Download conv1 as JSON']")
    body = json.loads(Path(info.value.path()).read_text())
    assert torch.equal(torch.tensor(body["values"]), expected["conv1"])
    with page.expect_download() as info:
        page.click("#act-x button[aria-label='Download x as CSV']")
    rows = Path(info.value.path()).read_text().splitlines()[1:]
    torch.manual_seed(0)
    x = torch.randn(1, 1, 32, 32)
    got = torch.tensor([[float(v) for v in r.split(",")[3:]] for r in rows])
    assert torch.equal(got, x[0, 0])
