"""Runs with the page's display encoding (u8): every map within half a level of torch's
float32 value, the small tensors exact, and the exact values of a later f32 run the ones the
u8 payload's ``exact_crc32`` names (what the page checks before it shows a hover value)."""

from __future__ import annotations

import base64
import json
import zlib

import numpy as np
import torch

from server.schemas.runs import RunResult
from tests.server.test_runs import lenet_oracle, sample, tensor_input


def _dequantized(p: dict) -> np.ndarray:
    codes = np.frombuffer(base64.b64decode(p["data"]), dtype=np.uint8).astype(np.float64)
    return (p["offset"] + codes * p["scale"]).reshape(p["shape"])


def test_lenet_u8_maps_are_within_half_a_level_of_torch(api, lenet):
    x = sample(3, 1, 1, 32, 32)
    run = {"inputs": {"x": tensor_input(x)}, "encoding": "u8"}
    result = api.run(lenet["id"], **run)
    RunResult.model_validate(result)  # the schema /docs shows is the one sent
    oracle = lenet_oracle(0, x)
    exact = api.run(lenet["id"], **{**run, "encoding": "f32"})
    for name, act in result["activations"].items():
        p, want = act["tensor"], oracle[name].numpy()
        if want.size <= 256:  # fc1, fc2, fc3 …: read one by one, sent exact
            assert p["encoding"] == "f32"
            api.assert_same(p, oracle[name])
            continue
        assert p["encoding"] == "u8", name
        lo, hi = float(want.min()), float(want.max())
        assert p["offset"] == lo and p["scale"] == (hi - lo) / 255
        err = np.abs(_dequantized(p) - want.astype(np.float64))
        assert err.max() <= p["scale"] / 2 * (1 + 1e-9), name
        ex = exact["activations"][name]["tensor"]
        assert p["exact_crc32"] == zlib.crc32(base64.b64decode(ex["data"])), name
        api.assert_same(ex, oracle[name])  # the exact path: bit-equal
    api.assert_same(result["outputs"]["fc3"], oracle["fc3"])
    assert result["inputs"]["x"]["tensor"]["encoding"] == "u8"  # 1024 values: drawn only


def test_u8_answer_is_under_a_third_of_f32s(api, lenet):
    sizes = {
        enc: len(json.dumps(api.run(lenet["id"], encoding=enc))) for enc in ("u8", "f16", "f32")
    }
    assert sizes["u8"] < sizes["f16"] * 0.65 and sizes["u8"] < sizes["f32"] / 3, sizes


def test_a_map_with_nan_goes_as_f32(api):
    spec = {
        "name": "Log",
        "inputs": {"x": {"shape": [1, 400]}},
        "layers": [{"name": "log", "type": "Identity"}],
    }
    model = api.create(spec=spec, seed=0)
    x = torch.linspace(-1, 1, 400).reshape(1, 400).log()  # NaN below zero
    payload = {"kind": "tensor", "data": [["NaN" if v != v else v for v in x[0].tolist()]]}
    got = api.run(model["id"], inputs={"x": payload}, encoding="u8")
    p = got["activations"]["log"]["tensor"]
    assert p["encoding"] == "f32"
    back = api.decode(p)
    assert np.array_equal(np.isnan(back), x.isnan().numpy())
