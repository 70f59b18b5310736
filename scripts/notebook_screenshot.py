"""Refresh docs/screenshots/notebook_lenet_run.png: examples/tutorial.ipynb executed against a
fresh server, rendered by Jupyter's nbconvert (HTML exporter, the JupyterLab template), and
photographed in Chromium with the network cut off.

    python scripts/notebook_screenshot.py [--html OUT.html]

Offline: the page needs nothing from the network. nbconvert's template loads require.js and
MathJax from a CDN, which nothing here uses (no widgets, no LaTeX), so those two blocks are
left empty. Plotly figures come out of the kernel as ``application/vnd.plotly.v1+json``, the
mime type JupyterLab draws with its Plotly extension; nbconvert has no renderer for it, so
each one gets the HTML plotly itself writes for it (``plotly.io.to_html``), the first with
the plotly package's own plotly.js inlined, none with MathJax. Needs /usr/bin/chromium;
never runs ``playwright install``.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import jinja2
import nbformat
import plotly.io
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CoalesceStreamsPreprocessor
from playwright.sync_api import sync_playwright

from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
OUT = ROOT / "docs" / "screenshots" / "notebook_lenet_run.png"
PLOTLY = "application/vnd.plotly.v1+json"
# The lab template, without the two scripts it takes from a CDN.
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
"""
# What a page may fetch: nothing but itself (links a reader clicks are fine).
FETCHED = re.compile(r"""<(?:script|img|iframe|link)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""")


def execute(nb: nbformat.NotebookNode, workdir: Path) -> nbformat.NotebookNode:
    """Run the notebook top to bottom against a fresh server (its parameters cell pointed at it)."""
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    env = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}
    with ChildServer(workdir / "data", env=env, timeout=90) as srv:
        params.source = f"BASE_URL = {srv.url!r}"
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
    return nb


def to_html(nb: nbformat.NotebookNode) -> str:
    """The executed notebook as nbconvert draws it, Plotly figures included, offline."""
    nb = nbformat.from_dict(nb)  # a copy: the figures' HTML is for this page only
    first = True
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY in data and "text/html" not in data:
                data["text/html"] = plotly.io.to_html(
                    data[PLOTLY], include_plotlyjs=first, include_mathjax=False, full_html=False
                )
                first = False
    exporter = HTMLExporter(
        template_name="lab",
        template_file="offline.html.j2",
        extra_loaders=[jinja2.DictLoader({"offline.html.j2": TEMPLATE})],
    )
    # a progress bar redraws its line with "\r": keep the last drawing, as Jupyter shows it
    exporter.register_preprocessor(CoalesceStreamsPreprocessor, enabled=True)
    html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": NOTEBOOK.stem}})
    if found := FETCHED.search(html):
        raise ValueError(f"the page would fetch from the network: {found.group(0)}")
    return html


def screenshot(html: Path, out: Path) -> None:
    """LeNet-5's summary, the run's table and conv1's maps, from the page in Chromium."""
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1050, "height": 900})
        page.route(
            "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
        )
        page.goto(html.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg")
        top = page.locator("h2", has_text="LeNet-5").bounding_box()
        figure = page.locator(".js-plotly-plot").first.bounding_box()
        assert top and figure
        clip = {
            "x": 0,
            "y": top["y"] - 8,
            "width": 1050,
            "height": figure["y"] + figure["height"] - top["y"] + 16,
        }
        page.screenshot(path=str(out), clip=clip, full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, help="also keep the page here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        nb = execute(nbformat.read(NOTEBOOK, as_version=4), Path(tmp))
        page = args.html or Path(tmp) / "tutorial.html"
        page.write_text(to_html(nb))
        screenshot(page, OUT)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
