"""examples/tutorial.ipynb runs from top to bottom (nbclient, a real kernel) against a real
server, and shows what it says: the models' summary tables, a run, figures, a training."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "tutorial.ipynb"


@pytest.mark.slow
def test_the_tutorial_notebook_runs_against_a_real_server(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    env = {"PLAYGROUND_RATE_LIMIT_PER_MINUTE": "0"}
    with ChildServer(tmp_path / "data", env=env, timeout=90) as srv:
        params.source = f"BASE_URL = {srv.url!r}"
        NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
        ).execute()
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
