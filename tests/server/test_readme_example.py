"""The README's scripted experiment (examples/scripted_experiment.py) runs, and computes what
plain torch computes: in-process through the ASGI app, and for real against
``python -m server`` (uvicorn) on a free port of 127.0.0.1.

The README carries the script verbatim between ``<!-- example:start -->`` and
``<!-- example:end -->``; the copy is checked against the file.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from models.build import build
from models.presets import PRESETS
from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "scripted_experiment.py"
README = ROOT / "README.md"


def _load_script():
    spec = importlib.util.spec_from_file_location("scripted_experiment", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _oracle() -> tuple[np.ndarray, np.ndarray]:
    """conv1's output and the class scores of LeNet-5 (seed 0) on the seeded random input."""
    model = build(PRESETS["lenet5"].spec, seed=0).model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        conv1 = model.conv1(x)
        h = conv1
        for layer in PRESETS["lenet5"].spec["layers"][1:]:
            h = getattr(model, layer["name"])(h)
    return conv1.numpy(), h[0].numpy()


def _check(out: dict, html: Path, device: str) -> None:
    conv1, scores = _oracle()
    assert out["conv1"].shape == (1, 6, 28, 28) and out["scores"].shape == (10,)
    if device == "cpu":
        np.testing.assert_array_equal(out["conv1"], conv1)
        np.testing.assert_array_equal(out["scores"], scores)
    else:
        np.testing.assert_allclose(out["conv1"], conv1, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["scores"], scores, rtol=1e-4, atol=1e-5)
    page = html.read_text()
    assert "Plotly.newPlot" in page
    assert re.search(r"<script[^>]*\ssrc=", page) is None  # no script fetched from anywhere
    assert len(page) > 1_000_000  # plotly.js is inline: the page works offline


def test_example_in_process(client, tmp_path, capsys):
    html = tmp_path / "conv1.html"
    out = _load_script().run_experiment(client, html)
    device = torch.device(client.get("/healthz").json()["device"]).type
    _check(out, html, device)
    printed = capsys.readouterr().out
    assert printed.count("class ") >= 10 and "predicted class" in printed


@pytest.fixture
def live_server(tmp_path):
    """``python -m server`` on a free port of 127.0.0.1; terminated afterwards, always."""
    with ChildServer(tmp_path / "data", timeout=90) as srv:
        yield srv.url


@pytest.mark.slow
def test_example_against_a_real_server(live_server, tmp_path):
    device = torch.device(httpx.get(f"{live_server}/healthz").json()["device"]).type
    # as the README runs it: a separate process
    html = tmp_path / "conv1.html"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), live_server, str(html)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's server.client
    )
    assert done.returncode == 0, done.stderr
    _, scores = _oracle()
    printed = dict(re.findall(r"class (\d): ([+-]\d+\.\d+)", done.stdout))
    assert [float(printed[str(d)]) for d in range(10)] == pytest.approx(scores, abs=1e-4)
    assert f"predicted class {int(scores.argmax())}" in done.stdout
    # and as a library, over real HTTP
    with httpx.Client(base_url=live_server, timeout=60) as client:
        out = _load_script().run_experiment(client, tmp_path / "again.html")
    _check(out, tmp_path / "again.html", device)


def test_readme_carries_the_example_verbatim():
    text = README.read_text()
    if "<!-- example:start -->" not in text:
        pytest.skip("README.md has no <!-- example:start --> marker yet (the lead adds it)")
    block = text.split("<!-- example:start -->", 1)[1].split("<!-- example:end -->", 1)[0]
    code = re.search(r"```python\n(.*?)```", block, re.DOTALL)
    if code is None and not block.strip():
        pytest.skip("README.md's example markers are still empty (the lead pastes the script)")
    assert code is not None, "no ```python block between the example markers"
    assert code.group(1) == SCRIPT.read_text()
