"""Read-only resources (server/routers/library.py): the catalog, the presets, /api/validate.

The oracle for /api/validate is plain torch: the real modules built from the spec, run one
after the other, give every layer's output shape, parameter count and FLOPs
(``torch.utils.flop_counter.FlopCounterMode``).
"""

from __future__ import annotations

import copy
import importlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.build import build
from models.catalog import CATALOG
from models.limits import DEFAULT_LIMITS
from models.presets import PRESETS
from server.settings import Settings

LENET = PRESETS["lenet5"].spec


def _defaults() -> dict:
    names = ("max_params", "max_activation_bytes", "max_flops", "max_layers")
    return {n: Settings.model_fields[n].default for n in names}


# -- catalog --------------------------------------------------------------------------------
def test_catalog_lists_every_layer_type_with_its_args(client):
    r = client.get("/api/catalog")
    assert r.status_code == 200
    body = r.json()
    assert {entry["type"] for entry in body["layers"]} == set(CATALOG)
    for entry in body["layers"]:
        assert entry["category"] in body["categories"]
        assert entry["doc"]
        for arg in entry["args"]:
            assert {"name", "kind", "doc", "required"} <= set(arg)
        names = [a["name"] for a in entry["args"]]
        assert names == list(entry["args_schema"].get("properties", {}))


def test_catalog_names_real_torch_classes(client):
    for entry in client.get("/api/catalog").json()["layers"]:
        if entry["is_torch_class"]:
            module, _, name = entry["torch"].rpartition(".")
            assert isinstance(getattr(importlib.import_module(module), name), type)


def test_catalog_linear_entry_matches_torch(client):
    linear = next(e for e in client.get("/api/catalog").json()["layers"] if e["type"] == "Linear")
    args = {a["name"]: a for a in linear["args"]}
    assert list(args) == ["in_features", "out_features", "bias"]
    assert args["bias"]["default"] is True  # nn.Linear(..., bias=True)
    assert args["in_features"]["auto"] is True


# -- presets --------------------------------------------------------------------------------
def test_preset_list(client):
    r = client.get("/api/presets")
    assert r.status_code == 200
    presets = r.json()["presets"]
    assert [p["name"] for p in presets] == list(PRESETS)
    for p in presets:
        assert p["layers"] == len(PRESETS[p["name"]].spec["layers"])
        assert p["title"] and p["description"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_detail(client, name):
    r = client.get(f"/api/presets/{name}")
    assert r.status_code == 200
    body = r.json()
    assert body["spec"] == PRESETS[name].spec
    assert body["default_inputs"] == PRESETS[name].default_inputs
    assert body["seed"] == PRESETS[name].seed


def test_unknown_preset_is_404(client, api):
    err = api.error(client.get("/api/presets/lenet6"), 404, "unknown_preset")
    assert "lenet5" in err["message"]


# -- validate -------------------------------------------------------------------------------
def test_validate_lenet_matches_plain_torch(client):
    r = client.post("/api/validate", json={"spec": LENET})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is True and body["error"] is None
    model = build(LENET, seed=0).model
    x = torch.zeros(1, 1, 32, 32)
    total_flops = 0
    with torch.no_grad():
        for row, layer in zip(body["layers"], LENET["layers"], strict=True):
            module = getattr(model, layer["name"])
            with FlopCounterMode(display=False) as counter:
                x = module(x)
            assert row["name"] == layer["name"] and row["type"] == layer["type"]
            assert row["output_shape"] == list(x.shape)
            assert row["params"] == sum(p.numel() for p in module.parameters())
            assert row["activation_bytes"] == x.numel() * x.element_size()
            assert row["flops"] == counter.get_total_flops()
            total_flops += row["flops"]
    assert body["outputs"] == {"fc3": [1, 10]}
    assert body["total_params"] == sum(p.numel() for p in model.parameters()) == 81_290
    assert body["total_flops"] == total_flops
    input_bytes = 32 * 32 * 4
    assert body["total_activation_bytes"] == input_bytes + sum(
        row["activation_bytes"] for row in body["layers"]
    )


def test_validate_fills_auto_sizes(client):
    spec = copy.deepcopy(LENET)
    spec["layers"][3]["args"]["in_channels"] = "auto"
    spec["layers"][7]["args"]["in_features"] = "auto"
    body = client.post("/api/validate", json={"spec": spec}).json()
    assert body["valid"] is True
    assert body["spec"]["layers"][3]["args"]["in_channels"] == 6
    assert body["spec"]["layers"][7]["args"]["in_features"] == 576  # 16×6×6
    assert body["layers"][7]["auto"] == ["in_features"]


def test_validate_reports_the_error_in_words(client):
    spec = copy.deepcopy(LENET)
    spec["layers"][3]["args"]["out_channels"] = 8  # flat now gives 8×6×6 = 288
    r = client.post("/api/validate", json={"spec": spec})
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False
    err = body["error"]
    assert err["code"] == "shape_mismatch" and err["layer"] == "fc1"
    assert "576" in err["message"] and "288" in err["message"]


def test_validate_allocates_nothing(client, monkeypatch):
    """Validation runs on the meta device: no model is built, none is kept."""
    import server.jobs
    import server.workers.context

    def no_build(*args, **kwargs):
        raise AssertionError("validate must not build a model")

    monkeypatch.setattr(server.workers.context, "build", no_build)
    monkeypatch.setattr(server.jobs, "build", no_build)
    before = client.get("/healthz").json()["worker"]["live_models"]
    assert client.post("/api/validate", json={"spec": LENET}).json()["valid"] is True
    assert client.get("/healthz").json()["worker"]["live_models"] == before


def test_validate_needs_no_workspace(client):
    assert client.post("/api/validate", json={"spec": LENET}).status_code == 200


@pytest.mark.parametrize("body", [{}, {"spec": LENET, "seed": 1}, {"spec": [1]}, []])
def test_validate_body_shape(client, api, body):
    api.error(client.post("/api/validate", json=body), 422, "invalid_request")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_validates_under_default_limits(make_client, name):
    # the default limits, not the default 2 s budget (tests/server/test_deadlines.py has
    # that): a loaded machine once made this the 503 of a missed budget
    client = make_client(**_defaults(), validate_timeout_s=60)
    body = client.post("/api/validate", json={"spec": PRESETS[name].spec}).json()
    assert body.get("valid") is True, body
    model = build(PRESETS[name].spec).model
    assert body["total_params"] == sum(p.numel() for p in model.parameters())


# -- the bad-spec list of the engine (tests/models/bad_specs.json) --------------------------
BAD_SPECS = json.loads((Path(__file__).parent.parent / "models" / "bad_specs.json").read_text())


@pytest.fixture
def engine_limits_client(make_client):
    """A client whose limits are the engine's defaults, the ones bad_specs.json was written for."""
    return make_client(**asdict(DEFAULT_LIMITS))


@pytest.mark.parametrize("case", BAD_SPECS, ids=[case["id"] for case in BAD_SPECS])
def test_bad_spec_through_validate(engine_limits_client, case):
    r = engine_limits_client.post("/api/validate", json={"spec": case["spec"]})
    if not isinstance(case["spec"], dict):  # the request schema says spec is an object
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
        return
    if r.status_code == 413:  # a limit not tied to a layer (input size) is refused outright
        assert case["code"] == "limit_exceeded"
        err = r.json()["error"]
    else:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["valid"] is False and body["spec"] is None
        err = body["error"]
    assert err["code"] == case["code"]
    assert case["phrase"] in err["message"]
    assert err.get("layer") == case["layer"]
