"""Limits (server/settings.py -> models/limits.py): each at the limit (accepted) and one past it
(refused with 413 ``limit_exceeded``, naming the PLAYGROUND_ setting to raise), refused before
any memory is spent.

Costs are computed by hand here: Linear(10, 20) on a (1, 10) input has 10·20 + 20 = 220
parameters, 2·10·20 = 400 FLOPs (one multiply and one add per weight), and 4·(10 + 20) = 120
activation bytes (the input and the output, float32).
"""

from __future__ import annotations

import base64
import io
import os
import resource

import numpy as np
from PIL import Image

from models.presets import PRESETS


def linear_spec(batch: int = 1, extra: list[dict] | None = None) -> dict:
    return {
        "name": "Small",
        "inputs": {"x": {"shape": [batch, 10]}},
        "layers": [
            {"name": "fc", "type": "Linear", "args": {"in_features": 10, "out_features": 20}},
            *(extra or []),
        ],
    }


PRELU = {"name": "act", "type": "PReLU"}  # one parameter: its slope
ANY_TENSOR = {"kind": "tensor", "data": [[0.5] * 10] * 2}  # a batch of 2: twice the cost


def refused(api, r, setting: str, *, actual: int | None = None, limit: int | None = None):
    err = api.error(r, 413, "limit_exceeded")
    detail = err.get("detail") or {}
    # the setting to raise is named, in the message or at least in the detail
    assert f"PLAYGROUND_{setting}" in err["message"] or detail["setting"] == f"PLAYGROUND_{setting}"
    if actual is not None:
        assert detail["actual"] == actual
    if limit is not None:
        assert detail["limit"] == limit
    return err


# -- parameters -----------------------------------------------------------------------------
def test_params_at_the_limit_and_one_past(make_api, builds):
    api = make_api(max_params=220)
    model = api.create(spec=linear_spec())
    assert model["summary"]["total_params"] == 220
    assert len(builds) == 1
    r = api.post("/api/models", json={"spec": linear_spec(extra=[PRELU])})
    err = refused(api, r, "MAX_PARAMS", actual=221, limit=220)
    assert err["layer"] == "act"
    assert len(builds) == 1  # refused on the meta device: nothing was built
    body = api.ok(api.post("/api/validate", json={"spec": linear_spec(extra=[PRELU])}))
    assert body["valid"] is False and body["error"]["code"] == "limit_exceeded"


def test_params_limit_on_put(make_api, builds):
    api = make_api(max_params=220)
    model = api.create(spec=linear_spec())
    r = api.put(f"/api/models/{model['id']}", json={"spec": linear_spec(extra=[PRELU])})
    refused(api, r, "MAX_PARAMS", actual=221)
    assert len(builds) == 1
    assert api.ok(api.get(f"/api/models/{model['id']}"))["version"] == 1


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_huge_layer_is_refused_before_allocation(make_api, builds):
    """Linear(10**5 -> 10**6) has 10**11 parameters (400 GB): refused without a byte spent."""
    api = make_api(max_params=60_000_000, max_flops=50 * 10**9)
    spec = {
        "inputs": {"x": {"shape": [1, 100_000]}},
        "layers": [
            {"name": "big", "type": "Linear", "args": {"in_features": 10**5, "out_features": 10**6}}
        ],
    }
    before = _rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = api.post("/api/models", json={"spec": spec})
    err = refused(api, r, "MAX_PARAMS", actual=10**11 + 10**6, limit=60_000_000)
    assert err["layer"] == "big"
    assert _rss_bytes() - before < 100 * 2**20
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before < 100 * 2**10  # KiB
    assert builds == []


# -- FLOPs ----------------------------------------------------------------------------------
def test_flops_at_the_limit_and_one_past(make_api):
    at = make_api(max_flops=400)
    model = at.create(spec=linear_spec())
    assert model["summary"]["total_flops"] == 400
    past = make_api(max_flops=399)
    refused(past, past.post("/api/models", json={"spec": linear_spec()}), "MAX_FLOPS", actual=400)


def test_flops_limit_at_run_time(make_api, builds):
    api = make_api(max_flops=400)
    model = api.create(spec=linear_spec())
    run = f"/api/models/{model['id']}/run"
    assert api.ok(api.post(run, json={}))["outputs"]["fc"]["shape"] == [1, 20]
    r = api.post(run, json={"inputs": {"x": ANY_TENSOR}})
    refused(api, r, "MAX_FLOPS", actual=800)
    assert len(builds) == 1


# -- activation memory ----------------------------------------------------------------------
def test_activation_bytes_at_the_limit_and_one_past(make_api):
    at = make_api(max_activation_bytes=120)
    assert at.create(spec=linear_spec())["summary"]["total_activation_bytes"] == 120
    past = make_api(max_activation_bytes=119)
    r = past.post("/api/models", json={"spec": linear_spec()})
    refused(past, r, "MAX_ACTIVATION_BYTES", actual=120)


def test_activation_bytes_limit_at_run_time(make_api):
    api = make_api(max_activation_bytes=120)
    model = api.create(spec=linear_spec())
    r = api.post(f"/api/models/{model['id']}/run", json={"inputs": {"x": ANY_TENSOR}})
    refused(api, r, "MAX_ACTIVATION_BYTES", actual=240)


# -- input size -----------------------------------------------------------------------------
def _relu_spec(*shape: int) -> dict:
    return {"inputs": {"x": {"shape": list(shape)}}, "layers": [{"name": "r", "type": "ReLU"}]}


def test_input_elements_at_the_limit_and_one_past(make_api):
    api = make_api(max_input_elements=100)
    model = api.create(spec=_relu_spec(4, 25))
    r = api.post("/api/models", json={"spec": _relu_spec(1, 101)})
    refused(api, r, "MAX_INPUT_ELEMENTS", actual=101, limit=100)
    refused(api, api.post("/api/validate", json={"spec": _relu_spec(1, 101)}), "MAX_INPUT_ELEMENTS")
    # at run time: a given tensor is measured before it is decoded
    run = f"/api/models/{model['id']}/run"
    ok = {"kind": "tensor", "data": [[1.0] * 25] * 4}
    assert api.ok(api.post(run, json={"inputs": {"x": ok}}))["outputs"]["r"]["shape"] == [4, 25]
    over = {"kind": "tensor", "data": [[1.0] * 101]}
    api.error(api.post(run, json={"inputs": {"x": over}}), 413, "limit_exceeded")
    huge = {"kind": "tensor", "encoding": "f32", "shape": [1, 2**40], "data": "AAAA"}
    api.error(api.post(run, json={"inputs": {"x": huge}}), 413, "limit_exceeded")


def test_sequence_length_at_the_limit_and_one_past(make_api):
    api = make_api(max_sequence_length=5)
    model = api.create(preset="lstm_tagger", seed=0)
    run = f"/api/models/{model['id']}/run"
    five = {"kind": "tokens", "text": "The dog ate the apple"}
    out = api.ok(api.post(run, json={"inputs": {"sentence": five}}))
    assert out["outputs"]["log_softmax"]["shape"] == [5, 3]
    six = {"kind": "tokens", "text": "The dog ate the apple Everybody"}
    refused(api, api.post(run, json={"inputs": {"sentence": six}}), "MAX_SEQUENCE_LENGTH", actual=6)
    six_ids = {"kind": "tensor", "data": [0, 1, 2, 3, 4, 5]}
    refused(api, api.post(run, json={"inputs": {"sentence": six_ids}}), "MAX_SEQUENCE_LENGTH")
    spec = PRESETS["lstm_tagger"].to_spec()
    spec["inputs"]["sentence"]["shape"] = [6]
    refused(api, api.post("/api/models", json={"spec": spec}), "MAX_SEQUENCE_LENGTH", actual=6)


def test_vocabulary_at_the_limit_and_one_past(make_api):
    api = make_api(max_vocab=9)  # the tagger's vocabulary has 9 words
    api.create(preset="lstm_tagger", seed=0)
    spec = PRESETS["lstm_tagger"].to_spec()
    spec["inputs"]["sentence"]["vocab"].append("cat")
    spec["layers"][0]["args"]["num_embeddings"] = 10
    refused(api, api.post("/api/models", json={"spec": spec}), "MAX_VOCAB", actual=10)


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((height, width), dtype=np.uint8), mode="L").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_image_pixels_at_the_limit_and_one_past(make_api):
    api = make_api(max_image_pixels=32 * 40)
    model = api.create(preset="lenet5", seed=0)
    run = f"/api/models/{model['id']}/run"
    at = {"kind": "image", "png_base64": _png(32, 40)}
    assert api.ok(api.post(run, json={"inputs": {"x": at}, "capture": []}))["mode"] == "eval"
    past = {"kind": "image", "png_base64": _png(1281, 1)}  # 1,281 = 32·40 + 1 pixels
    err = api.error(api.post(run, json={"inputs": {"x": past}}), 413, "limit_exceeded")
    assert "1,281" in err["message"]


# -- spec size ------------------------------------------------------------------------------
def _identities(n: int) -> dict:
    return {
        "inputs": {"x": {"shape": [1, 3]}},
        "layers": [{"name": f"id{i}", "type": "Identity"} for i in range(n)],
    }


def test_layers_at_the_limit_and_one_past(make_api):
    api = make_api(max_layers=4)
    assert len(api.create(spec=_identities(4))["spec"]["layers"]) == 4
    refused(api, api.post("/api/models", json={"spec": _identities(5)}), "MAX_LAYERS")
    refused(api, api.post("/api/validate", json={"spec": _identities(5)}), "MAX_LAYERS")


# -- request sizes --------------------------------------------------------------------------
def test_json_body_at_the_limit_and_one_past(make_api):
    api = make_api(max_body_bytes=2048)
    raw = b'{"spec": {"inputs": {"x": {"shape": [1, 3]}}, "layers": []}}'
    json_headers = {"content-type": "application/json"}
    at = api.post("/api/validate", content=raw.ljust(2048), headers=json_headers)
    assert at.status_code == 200 and at.json()["valid"] is False  # read and judged
    past = api.post("/api/validate", content=raw.ljust(2049), headers=json_headers)
    api.error(past, 413, "body_too_large")


def test_upload_at_the_limit_and_one_past(make_api):
    probe = make_api()
    size = len(probe.weights(probe.create(preset="lenet5", seed=0)["id"]))
    api = make_api(max_upload_bytes=size)
    model = api.create(preset="lenet5", seed=1)
    data = api.weights(model["id"])
    assert len(data) == size
    assert api.ok(api.put_weights(model["id"], data))["tensors"] == 10
    api.error(api.put_weights(model["id"], data + b" "), 413, "body_too_large")


# -- tenancy --------------------------------------------------------------------------------
def test_models_per_workspace_at_the_limit_and_one_past(make_api):
    api = make_api(max_models_per_workspace=2)
    first = api.create(preset="linear_3_2")
    api.create(preset="linear_3_2")
    r = api.post("/api/models", json={"preset": "linear_3_2"})
    refused(api, r, "MAX_MODELS_PER_WORKSPACE", limit=2)
    assert len(api.other().ok(api.other().get("/api/models"))["models"]) == 0
    api.other().create(preset="linear_3_2")  # another workspace has its own allowance
    assert api.delete(f"/api/models/{first['id']}").status_code == 204
    api.create(preset="linear_3_2")  # room again


def test_workspaces_at_the_limit_and_one_past(make_client):
    client = make_client(max_workspaces=2)
    assert client.post("/api/workspaces").status_code == 201
    assert client.post("/api/workspaces").status_code == 201
    r = client.post("/api/workspaces")
    assert r.status_code == 413
    err = r.json()["error"]
    assert err["code"] == "limit_exceeded" and "PLAYGROUND_MAX_WORKSPACES" in err["message"]
    assert err["detail"]["limit"] == 2
