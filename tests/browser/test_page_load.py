"""How the playground page loads: every ES module it imports is preloaded from the one list
the imports make (server/module_graph.py), and Plotly's long start-up never holds a run back
(static/js/plotly_early.js, playground.js)."""

from __future__ import annotations

import pytest

from bench.bench_ui import share_hash

pytestmark = pytest.mark.browser


def test_the_modules_preloaded_are_the_modules_loaded(page, server):
    loaded: set[str] = set()
    page.on(
        "request",
        lambda r: loaded.add(r.url.split("/static/js/")[1]) if "/static/js/" in r.url else None,
    )
    page.goto(f"{server}/playground#preset=lenet5")
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
    before the page's script starts) or once the run is sent, never in between."""
    page.goto(f"{server}/playground{share_hash()}")
    page.wait_for_selector("#act-conv1 .fig[data-drawn=grid]")
    names = ["pg:boot", "pg:run-sent", "pg:plotly-ready", "pg:first-activation", "pg:drawn:conv1"]
    marks = page.evaluate(
        "(names) => Object.fromEntries(names.map((n) => "
        "[n, performance.getEntriesByName(n)[0]?.startTime]))",
        names,
    )
    ready = marks["pg:plotly-ready"]
    assert ready < marks["pg:boot"] or marks["pg:run-sent"] < ready, marks
    assert ready <= marks["pg:first-activation"]
    assert marks["pg:drawn:conv1"] == pytest.approx(marks["pg:first-activation"], abs=5)
