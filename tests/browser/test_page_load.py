"""How the playground page loads: its ES modules as one file (server/js_bundle.py), or with
``?bundle=0`` one by one, every module it imports preloaded from the one list the imports
make (server/module_graph.py); and Plotly's long start-up never holds a run back
(static/js/plotly_early.js, playground.js)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from bench.bench_ui import share_hash

pytestmark = pytest.mark.browser


def test_the_modules_come_as_one_file(page, server):
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/playground#preset=lenet5")
    page.wait_for_selector("#model-status[data-kind=ok]")
    page.click("#run-btn")
    expect(page.locator("#model-status")).to_contain_text("Ran in")
    assert not errors
    own = sorted(u.removeprefix(server) for u in scripts if "/vendor/" not in u)
    assert own == ["/bundle/playground.js", "/static/js/plotly_early.js"]


def test_the_modules_preloaded_are_the_modules_loaded(page, server):
    """``?bundle=0``: the modules one by one, for debugging."""
    loaded: set[str] = set()
    page.on(
        "request",
        lambda r: loaded.add(r.url.split("/static/js/")[1]) if "/static/js/" in r.url else None,
    )
    page.goto(f"{server}/playground?bundle=0#preset=lenet5")
    page.wait_for_selector("#model-status[data-kind=ok]")
    preloaded = page.eval_on_selector_all(
        "link[rel=modulepreload]", "links => links.map(l => l.getAttribute('href'))"
    )
    assert len(preloaded) == len(set(preloaded)) > 40
    early = "plotly_early.js"  # its own <script>: starts Plotly while the modules load
    assert {h.removeprefix("/static/js/") for h in preloaded} == loaded - {early}
    assert "exact.js" in loaded and "train/view.js" in loaded  # nested and new ones too


def test_plotly_never_holds_the_run_back(page, server):
    """A link that runs on open: Plotly's start-up runs either while the modules load (done
    before the page's script starts) or once the run's maps are painted (map_canvas.js),
    never in between; Plotly's figures follow."""
    page.goto(f"{server}/playground{share_hash()}")
    page.wait_for_selector("#act-conv1 .fig[data-interactive=grid]")
    marks = page.evaluate(
        "() => Object.fromEntries(performance.getEntriesByType('mark')"
        ".filter((m) => m.name.startsWith('pg:')).map((m) => [m.name, m.startTime]))"
    )
    ready = marks["pg:plotly-ready"]
    assert ready < marks["pg:boot"] or marks["pg:first-activation"] < ready, marks
    assert marks["pg:run-sent"] < marks["pg:first-activation"]
    assert ready <= marks["pg:interactive:conv1"]
    # the first activation is a layer's first map, marked in the same step (whichever layer
    # the page drew first: the order follows what is in view)
    first_layer = min(t for n, t in marks.items() if n.startswith("pg:drawn:"))
    assert first_layer <= marks["pg:first-activation"], marks


def test_run_pressed_while_the_page_starts_is_not_lost(page, server):
    """Run is disabled in the page's HTML until its script binds it: a click that came
    before the modules started did nothing (a CI run once lost one this way)."""
    held: list = []
    page.route("**/bundle/playground.js", lambda route: held.append(route))
    page.goto(f"{server}/playground#preset=linear_3_2", wait_until="commit")
    page.wait_for_selector("#run-btn", state="attached")
    page.wait_for_function("() => document.readyState === 'interactive'")  # the HTML parsed
    assert held, "the page's script is held back"
    assert page.locator("#run-btn").is_disabled() and page.locator("#apply-btn").is_disabled()
    for route in held:
        route.continue_()
    page.click("#run-btn", timeout=15_000)  # waits until the button is enabled
    expect(page.locator("#model-status")).to_contain_text("Ran in")
