"""The built wheel works on its own: installed into a fresh virtual environment (its
dependencies taken from this one, no network), ``playground serve`` serves the start page,
the static files and /healthz, and ``playground validate`` / ``export`` answer."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import httpx
import pytest

from models.presets import PRESETS
from server.child import ChildServer

ROOT = Path(__file__).resolve().parents[2]


def sh(*cmd: str | Path, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{cmd}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_the_wheel_serves_the_ui_from_a_clean_venv(tmp_path):
    dist = tmp_path / "dist"
    sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        ROOT,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("pytorch_model_playground-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for packaged in (
        "server/ui/templates/index.html",
        "server/ui/static/css/base.css",
        "server/ui/static/vendor/plotly/plotly-cartesian.min.js",
        "server/client/core.py",
        "models/catalog/__init__.py",
    ):
        assert packaged in names, packaged
    assert not [n for n in names if n.startswith(("static/", "templates/", "tests/"))]

    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    sh(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        wheel,
        cwd=tmp_path,
    )
    # the dependencies: this environment's packages, after the venv's own (no network)
    site = sh(
        python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
    ).stdout.strip()
    (Path(site) / "shared_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    where = sh(
        python, "-c", "import server, models; print(server.__file__, models.__file__)", cwd=tmp_path
    ).stdout
    assert where.count(str(venv)) == 2, where  # the wheel's code, not this checkout's

    spec = tmp_path / "lenet.json"
    spec.write_text(__import__("json").dumps(PRESETS["lenet5"].spec))
    playground = venv / "bin" / "playground"
    verdict = sh(playground, "validate", spec, cwd=tmp_path).stdout
    assert verdict.startswith("LeNet is valid: 12 layers, 81,290 parameters")
    assert "class LeNet(nn.Module)" in sh(playground, "export", spec, cwd=tmp_path).stdout

    with ChildServer(tmp_path / "data", cmd=[str(playground), "serve"], timeout=120) as srv:
        start = httpx.get(srv.url + "/")
        assert start.status_code == 200 and "LeNet" in start.text
        css = httpx.get(srv.url + "/static/css/base.css")
        assert css.status_code == 200 and css.text == (ROOT / "static/css/base.css").read_text()
        js = httpx.get(srv.url + "/bundle/playground.js")  # built from the wheel's copy
        assert js.status_code == 200 and "// ---- app.js" in js.text
        health = httpx.get(srv.url + "/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
