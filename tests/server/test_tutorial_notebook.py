"""examples/tutorial.ipynb runs from top to bottom (nbclient, a real kernel) against a real
server, and shows what it says: the models' summary tables, a run, figures, a training; and
Jupyter's nbconvert draws it as a page that needs no network (the README's screenshot)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"
_spec = importlib.util.spec_from_file_location("shot", ROOT / "scripts" / "notebook_screenshot.py")
shot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(shot)


@pytest.mark.slow
def test_the_tutorial_notebook_runs_against_a_real_server(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    shot.execute(nb, tmp_path)  # what scripts/notebook_screenshot.py runs
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("Layer (type)" in h and "conv1 (Conv2d)" in h for h in html)  # LeNet's summary
    assert any("linear1 (Linear)" in h and "22,210" in h for h in html)  # TinyModel's
    assert any("<th>zeros</th>" in h for h in html)  # the run's table
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in o.get("data", {})]
    assert len(figures) == 3  # conv1's maps, dropout, the training's curves
    text = json.dumps([o.get("text", "") for o in outputs])
    assert "shape_mismatch fc1" in text and "60/60" in text

    # as Jupyter's nbconvert draws it (scripts/notebook_screenshot.py): offline, every figure
    page = shot.to_html(nb)  # raises when the page would fetch anything
    assert page.count('class="plotly-graph-div"') == 3
    assert page.count("plotly.js v") == 1  # the package's bundle, inlined once
    assert "60/60" in page and "\r" not in page  # the progress bar's last drawing only
    assert "<h2" in page and "Layer (type)" in page
    with pytest.raises(ValueError, match="would fetch from the network"):
        shot.to_html(
            nbformat.v4.new_notebook(
                cells=[nbformat.v4.new_markdown_cell("![x](https://a.b/c.png)")]
            )
        )
