"""Convolution by hand (POST /api/models/{id}/conv_by_hand and models.conv_by_hand): the patch,
kernel and products are the window F.conv2d reads, and sum + bias equals F.conv2d's cell."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from torch import nn

from models.conv_by_hand import conv_by_hand
from models.errors import SpecError
from models.presets import PRESETS

CELLS = [(0, 0, 0), (3, 5, 7), (5, 27, 27), (1, 13, 0)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 1},
        {"padding": 2, "dilation": 2},
        {"groups": 2, "stride": (1, 2), "bias": False},
    ],
)
def test_every_cell_equals_conv2d(kwargs):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, **kwargs)
    x = torch.randn(1, 4, 11, 12)
    with torch.no_grad():
        want = F.conv2d(
            x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
        )
    for c in range(want.shape[1]):
        for r in range(want.shape[2]):
            for k in range(want.shape[3]):
                got = conv_by_hand(conv, x, c, r, k)
                assert got["value"] == float(want[0, c, r, k])
                assert got["result"] == pytest.approx(got["value"], abs=1e-5)
                products = torch.tensor(got["products"])
                assert torch.equal(
                    products, torch.tensor(got["patch"]) * torch.tensor(got["kernel"])
                )
                assert got["sum"] == float(products.sum())


def test_cells_outside_the_map_are_refused():
    conv = nn.Conv2d(1, 2, 5)
    with pytest.raises(SpecError, match="row 28 is outside"):
        conv_by_hand(conv, torch.zeros(1, 1, 32, 32), 0, 28, 0)
    with pytest.raises(SpecError, match="Conv2d"):
        conv_by_hand(nn.Linear(2, 2), torch.zeros(1, 2), 0, 0, 0)  # type: ignore[arg-type]


def _lenet_conv1(api, model_id: str) -> nn.Conv2d:
    weights = st_load(api.weights(model_id))
    conv = nn.Conv2d(1, 6, 5)
    conv.load_state_dict({"weight": weights["conv1.weight"], "bias": weights["conv1.bias"]})
    return conv


def test_api_cell_equals_the_runs_map(api, lenet):
    x = [[[[((r * 32 + c) % 17) / 8 - 1 for c in range(32)] for r in range(32)]]]
    inputs = {"x": {"kind": "tensor", "data": x}}
    run = api.run(lenet["id"], inputs=inputs, encoding="f32", downsample=False)
    maps = torch.from_numpy(api.decode(run["activations"]["conv1"]["tensor"]).copy())
    with torch.no_grad():
        want = F.conv2d(torch.tensor(x), *_lenet_conv1(api, lenet["id"]).parameters())
    assert torch.equal(maps, want)
    for c, r, k in CELLS:
        body = {"layer": "conv1", "channel": c, "row": r, "col": k, "inputs": inputs}
        got = api.ok(api.post(f"/api/models/{lenet['id']}/conv_by_hand", json=body))
        assert got["value"] == float(maps[0, c, r, k])
        assert got["result"] == pytest.approx(got["value"], abs=1e-5)
        patch = torch.tensor(x)[0, 0, r : r + 5, k : k + 5]
        assert torch.equal(torch.tensor(got["patch"])[0], patch)


def test_api_refuses_what_is_not_a_conv_cell(api, lenet):
    url = f"/api/models/{lenet['id']}/conv_by_hand"
    err = api.error(api.post(url, json={"layer": "fc1", "channel": 0, "row": 0, "col": 0}), 422)
    assert "conv1, conv2" in err["message"]
    api.error(api.post(url, json={"layer": "conv1", "channel": 6, "row": 0, "col": 0}), 422)
    ref = {"training": "nope", "step": 0}
    body = {"layer": "conv1", "channel": 0, "row": 0, "col": 0, "checkpoint": ref}
    api.error(api.post(url, json=body), 404, "training_not_found")
    assert PRESETS["lenet5"].spec["layers"][0]["name"] == "conv1"
    cell = {"layer": "conv1", "channel": 0, "row": 0, "col": 0}
    body = {**cell, "inputs": {"image": {"kind": "random", "seed": 0}}}  # LeNet reads x
    err = api.error(api.post(url, json=body), 422, "invalid_input")
    assert "its inputs are x" in err["message"]


def test_points_of_a_2d_set_are_its_samples(api):
    from models.datasets import get_sample

    got = api.ok(api.get("/api/datasets/spiral/points/test"))
    assert len(got["x"]) == len(got["label"]) == 250
    for i in (0, 17, 249):
        x, label = get_sample("spiral", "test", i)
        assert got["x"][i] == x.tolist() and got["label"][i] == label
    api.error(api.get("/api/datasets/digits/points/test"), 404, "not_a_point_set")
