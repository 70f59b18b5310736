"""How the playground page loads: every ES module it imports is preloaded from the one list
the imports make (server/module_graph.py), and a link that runs on open sends its run before
Plotly's long start-up, which then draws what came back."""

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
    assert {h.removeprefix("/static/js/") for h in preloaded} == loaded
    assert "exact.js" in loaded and "train/view.js" in loaded  # nested and new ones too


def test_a_link_that_runs_on_open_sends_the_run_before_plotly_starts(page, server):
    page.goto(f"{server}/playground{share_hash()}")
    page.wait_for_selector("#act-conv1 .fig[data-drawn=grid]")
    marks = page.evaluate(
        """() => Object.fromEntries(['pg:run-sent', 'pg:plotly-ready', 'pg:first-activation',
             'pg:drawn:conv1'].map((n) => [n, performance.getEntriesByName(n)[0]?.startTime]))"""
    )
    assert marks["pg:run-sent"] < marks["pg:plotly-ready"] <= marks["pg:first-activation"]
    assert marks["pg:drawn:conv1"] == pytest.approx(marks["pg:first-activation"], abs=5)
