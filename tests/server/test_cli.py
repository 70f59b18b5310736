"""``playground validate`` and ``playground export``: the engine's verdict in plain words and
the exported class (which, run by Python, builds the model torch builds)."""

from __future__ import annotations

import copy
import json

import torch

from models.build import build
from models.presets import PRESETS
from server.cli import main


def write(tmp_path, spec) -> str:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    return str(path)


def test_validate_a_good_spec(tmp_path, capsys):
    assert main(["validate", write(tmp_path, PRESETS["lenet5"].spec)]) == 0
    out = capsys.readouterr().out
    params = sum(p.numel() for p in build(PRESETS["lenet5"].spec, seed=0).model.parameters())
    assert out.startswith(f"LeNet is valid: 12 layers, {params:,} parameters")
    assert "fc1 (Linear)" in out and "1×576" in out


def test_validate_a_bad_spec_says_what_to_change(tmp_path, capsys):
    spec = copy.deepcopy(PRESETS["lenet5"].spec)
    del spec["layers"][5]  # pool2: fc1 then gets 16×12×12
    assert main(["validate", write(tmp_path, spec)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("Not valid (layer fc1): fc1 expects 576 input features")
    assert "error code: shape_mismatch" in out
    (tmp_path / "broken.json").write_text("{nope")
    assert main(["validate", str(tmp_path / "broken.json")]) == 1
    assert "is not JSON" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "missing.json")]) == 2
    assert "Cannot read" in capsys.readouterr().err


def test_export_prints_a_class_torch_builds(tmp_path, capsys):
    spec = PRESETS["lenet5"].spec
    assert main(["export", write(tmp_path, {"spec": spec})]) == 0  # a request body works too
    code = capsys.readouterr().out
    scope: dict = {}
    exec(compile(code, "exported.py", "exec"), scope)  # our own generated code, not user input
    torch.manual_seed(0)
    mine = scope["LeNet"]()
    expected = build(spec, seed=0).model.state_dict()
    assert all(torch.equal(mine.state_dict()[k], v) for k, v in expected.items())
