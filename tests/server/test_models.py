"""The model resource (server/routers/models.py): create, list, read, replace, delete,
summary and code.

Oracles: ``models.build.build(spec, seed=S)`` holds the tutorial's weights for seed S (tested
in tests/models); the exported code is executed and compared with the API's own weights and
``str(model)``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load

from models.build import build
from models.limits import DEFAULT_LIMITS
from models.presets import PRESETS

LENET = PRESETS["lenet5"].spec


def _state(api, model_id: str) -> dict[str, torch.Tensor]:
    return load(api.weights(model_id))


def _assert_state_equal(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor.detach().cpu()), name


# -- create ---------------------------------------------------------------------------------
def test_create_from_preset(api):
    body = api.create(preset="lenet5", seed=3)
    assert body["preset"] == "lenet5" and body["seed"] == 3 and body["version"] == 1
    assert body["name"] == "LeNet"
    assert body["labels"] == [str(d) for d in range(10)]
    assert [layer["name"] for layer in body["spec"]["layers"]] == [
        layer["name"] for layer in LENET["layers"]
    ]
    summary = body["summary"]
    assert summary["total_params"] == 81_290
    assert summary["outputs"] == {"fc3": [1, 10]}
    assert [row["output_shape"] for row in summary["layers"][:6]] == [
        [1, 6, 28, 28],
        [1, 6, 28, 28],
        [1, 6, 14, 14],
        [1, 16, 12, 12],
        [1, 16, 12, 12],
        [1, 16, 6, 6],
    ]
    _assert_state_equal(_state(api, body["id"]), build(LENET, seed=3).model.state_dict())


def test_the_preset_a_model_came_from_is_read_back(api):
    """POST answered ``preset: "lenet5"`` but GET of the same model answered null."""
    body = api.create(preset="lenet5", seed=3)
    assert api.ok(api.get(f"/api/models/{body['id']}"))["preset"] == "lenet5"
    changed = copy.deepcopy(body["spec"])
    changed["layers"][-1]["args"]["out_features"] = 5
    assert api.ok(api.put(f"/api/models/{body['id']}", json={"spec": changed}))["preset"] == (
        "lenet5"
    )
    other = api.create(spec=PRESETS["mlp"].to_spec())
    assert api.ok(api.get(f"/api/models/{other['id']}"))["preset"] is None


def test_create_preset_without_seed_uses_the_preset_seed(api):
    body = api.create(preset="lenet5")
    assert body["seed"] == PRESETS["lenet5"].seed
    _assert_state_equal(
        _state(api, body["id"]), build(LENET, seed=PRESETS["lenet5"].seed).model.state_dict()
    )


def test_create_from_spec_reports_the_seed_it_drew(api):
    spec = PRESETS["mlp"].to_spec()
    body = api.create(spec=spec)
    assert isinstance(body["seed"], int) and body["preset"] is None
    _assert_state_equal(_state(api, body["id"]), build(spec, seed=body["seed"]).model.state_dict())


def test_create_fills_auto_sizes(api):
    spec = copy.deepcopy(LENET)
    spec["layers"][7]["args"]["in_features"] = "auto"
    body = api.create(spec=spec, seed=0)
    assert body["spec"]["layers"][7]["args"]["in_features"] == 576
    _assert_state_equal(_state(api, body["id"]), build(LENET, seed=0).model.state_dict())


@pytest.mark.parametrize(
    "body",
    [{}, {"spec": LENET, "preset": "lenet5"}, {"preset": "lenet5", "colour": "red"}],
    ids=["neither", "both", "extra-field"],
)
def test_create_needs_exactly_one_source(api, body):
    api.error(api.post("/api/models", json=body), 422, "invalid_request")


def test_create_unknown_preset(api):
    api.error(api.post("/api/models", json={"preset": "resnet152"}), 404, "unknown_preset")


def test_create_bad_spec_stores_nothing(api):
    spec = copy.deepcopy(LENET)
    spec["layers"][7]["args"]["in_features"] = 400
    err = api.error(api.post("/api/models", json={"spec": spec}), 422, "shape_mismatch")
    assert err["layer"] == "fc1"
    assert api.ok(api.get("/api/models"))["models"] == []


# -- list, read -----------------------------------------------------------------------------
def test_list_models_oldest_first(api):
    a = api.create(preset="lenet5", seed=0)
    b = api.create(preset="lstm_tagger", seed=0)
    listed = api.ok(api.get("/api/models"))
    assert listed["limit"] == 20
    assert [m["id"] for m in listed["models"]] == [a["id"], b["id"]]
    first = listed["models"][0]
    assert first == {
        "id": a["id"],
        "name": "LeNet",
        "version": 1,
        "layers": 12,
        "total_params": 81_290,
        "updated": a["updated"],
    }


def test_read_model(api, lenet):
    body = api.ok(api.get(f"/api/models/{lenet['id']}"))
    for key in ("id", "name", "seed", "version", "spec", "summary", "created"):
        assert body[key] == lenet[key]
    assert body["kept"] is None and body["reinitialized"] is None


# -- replace --------------------------------------------------------------------------------
def test_put_keeps_unchanged_layers_and_reinitializes_changed_ones(api, lenet):
    before = _state(api, lenet["id"])
    spec = copy.deepcopy(lenet["spec"])
    spec["layers"][3]["args"]["out_channels"] = 8  # conv2: 16 -> 8 channels
    spec["layers"][7]["args"]["in_features"] = "auto"  # fc1: 576 -> 8×6×6 = 288
    body = api.ok(api.put(f"/api/models/{lenet['id']}", json={"spec": spec}))
    assert sorted(body["reinitialized"]) == ["conv2", "fc1"]
    names = [layer["name"] for layer in spec["layers"]]
    assert sorted(body["kept"]) == sorted(set(names) - {"conv2", "fc1"})
    assert body["version"] == lenet["version"] + 1
    assert body["spec"]["layers"][7]["args"]["in_features"] == 288
    after = _state(api, lenet["id"])
    for layer in ("conv1", "fc2", "fc3"):
        for kind in ("weight", "bias"):
            name = f"{layer}.{kind}"
            assert after[name].numpy().tobytes() == before[name].numpy().tobytes(), name
    assert list(after["conv2.weight"].shape) == [8, 6, 3, 3]
    assert list(after["fc1.weight"].shape) == [120, 288]
    # the new spec is what GET and the summary see
    again = api.ok(api.get(f"/api/models/{lenet['id']}"))
    assert again["spec"] == body["spec"] and again["version"] == body["version"]
    rows = api.ok(api.get(f"/api/models/{lenet['id']}/summary"))["layers"]
    assert rows[3]["output_shape"] == [1, 8, 12, 12]


def test_put_same_spec_keeps_everything(api, lenet):
    before = api.weights(lenet["id"])
    body = api.ok(api.put(f"/api/models/{lenet['id']}", json={"spec": lenet["spec"]}))
    assert body["reinitialized"] == []
    assert len(body["kept"]) == 12
    assert api.weights(lenet["id"]) == before


def test_put_keeps_freezing_of_kept_layers_only(api, lenet):
    url = f"/api/models/{lenet['id']}"
    api.ok(api.patch(f"{url}/parameters/conv1", json={"requires_grad": False}))
    api.ok(api.patch(f"{url}/parameters/conv2", json={"requires_grad": False}))
    spec = copy.deepcopy(lenet["spec"])
    spec["layers"][3]["args"]["kernel_size"] = 5  # conv2 changes: 16×10×10 -> pool 16×5×5
    spec["layers"][7]["args"]["in_features"] = "auto"
    api.ok(api.put(url, json={"spec": spec}))
    rows = {r["name"]: r for r in api.ok(api.get(f"{url}/parameters"))["rows"]}
    assert rows["conv1.weight"]["requires_grad"] is False
    assert rows["conv2.weight"]["requires_grad"] is True  # re-initialized, so trainable again


def test_put_bad_spec_leaves_model_unchanged(api, lenet):
    before = api.weights(lenet["id"])
    spec = copy.deepcopy(lenet["spec"])
    spec["layers"][3]["args"]["out_channels"] = 8  # fc1 still says 576
    err = api.error(api.put(f"/api/models/{lenet['id']}", json={"spec": spec}), 422)
    assert err["code"] == "shape_mismatch" and err["layer"] == "fc1"
    body = api.ok(api.get(f"/api/models/{lenet['id']}"))
    assert body["version"] == lenet["version"] and body["spec"] == lenet["spec"]
    assert api.weights(lenet["id"]) == before


def test_put_over_the_parameter_limit_is_refused(api, lenet):
    spec = copy.deepcopy(lenet["spec"])
    spec["layers"][7]["args"]["out_features"] = 5000  # fc1 576×5000: 2.9 M > 2 M
    spec["layers"][9]["args"]["in_features"] = "auto"
    err = api.error(api.put(f"/api/models/{lenet['id']}", json={"spec": spec}), 413)
    assert err["code"] == "limit_exceeded" and "PLAYGROUND_MAX_PARAMS" in err["message"]
    assert api.ok(api.get(f"/api/models/{lenet['id']}"))["version"] == lenet["version"]


def test_put_needs_a_spec(api, lenet):
    r = api.put(f"/api/models/{lenet['id']}", json={"preset": "lenet5"})
    api.error(r, 422, "invalid_request")


# -- delete ---------------------------------------------------------------------------------
def test_delete(api, lenet):
    other = api.create(preset="linear_3_2")
    live = api.client.get("/healthz").json()["worker"]["live_models"]
    r = api.delete(f"/api/models/{lenet['id']}")
    assert r.status_code == 204 and r.content == b""
    api.error(api.get(f"/api/models/{lenet['id']}"), 404, "model_not_found")
    api.error(api.delete(f"/api/models/{lenet['id']}"), 404, "model_not_found")
    assert [m["id"] for m in api.ok(api.get("/api/models"))["models"]] == [other["id"]]
    assert api.ok(api.get("/api/workspaces/me"))["models"] == 1
    assert api.client.get("/healthz").json()["worker"]["live_models"] == live - 1


# -- summary and code -----------------------------------------------------------------------
def _exported_class(api, model_id: str):
    body = api.ok(api.get(f"/api/models/{model_id}/code"))
    namespace: dict = {"__name__": "exported"}
    exec(compile(body["code"], "exported.py", "exec"), namespace)
    return body, namespace[body["class_name"]]


@pytest.mark.parametrize("preset", ["lenet5", "lstm_tagger", "mlp", "residual_block"])
def test_code_is_a_class_with_the_same_weights(api, preset):
    model = api.create(preset=preset, seed=7)
    body, cls = _exported_class(api, model["id"])
    assert body["class_name"] == model["name"]
    torch.manual_seed(7)
    exported = cls()
    _assert_state_equal(_state(api, model["id"]), exported.state_dict())
    summary = api.ok(api.get(f"/api/models/{model['id']}/summary"))
    assert summary["module_tree"] == str(exported)


def test_exported_lenet_computes_what_the_api_computes(api, lenet):
    _, cls = _exported_class(api, lenet["id"])
    torch.manual_seed(0)
    exported = cls().eval()
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    result = api.run(
        lenet["id"],
        inputs={"x": {"kind": "tensor", "data": x.tolist()}},
        capture=[],
        encoding="f32",
    )
    with torch.no_grad():
        api.assert_same(result["outputs"]["fc3"], exported(x))


def test_summary_rows_match_plain_torch(api, lenet):
    body = api.ok(api.get(f"/api/models/{lenet['id']}/summary"))
    model = build(LENET, seed=0).model
    assert body["total_params"] == body["trainable_params"] == 81_290
    x = torch.zeros(1, 1, 32, 32)
    with torch.no_grad():
        for row, layer in zip(body["layers"], LENET["layers"], strict=True):
            module = getattr(model, layer["name"])
            x = module(x)
            assert row["name"] == layer["name"] and row["type"] == layer["type"]
            assert row["output_shape"] == list(x.shape)
            assert row["params"] == row["trainable"] == sum(p.numel() for p in module.parameters())
            assert row["activation_bytes"] == x.numel() * 4
    assert body["total_flops"] == sum(row["flops"] for row in body["layers"])
    assert body["module_tree"].startswith("LeNet(\n  (conv1): Conv2d(1, 6, kernel_size=(5, 5)")


# -- the bad-spec list of the engine (tests/models/bad_specs.json) --------------------------
BAD_SPECS = json.loads((Path(__file__).parent.parent / "models" / "bad_specs.json").read_text())


@pytest.mark.parametrize("case", BAD_SPECS, ids=[case["id"] for case in BAD_SPECS])
def test_bad_spec_through_create_and_put(make_api, case):
    api = make_api(**asdict(DEFAULT_LIMITS))  # the limits bad_specs.json was written for
    status = 413 if case["code"] == "limit_exceeded" else 422
    # a spec that is not an object is refused by the request schema itself
    code = case["code"] if isinstance(case["spec"], dict) else "invalid_request"
    err = api.error(api.post("/api/models", json={"spec": case["spec"]}), status, code)
    if code == "invalid_request":
        return
    assert case["phrase"] in err["message"]
    assert err.get("layer") == case["layer"]
    assert api.ok(api.get("/api/models"))["models"] == []
    model = api.create(preset="linear_3_2", seed=0)
    before = api.weights(model["id"])
    r = api.put(f"/api/models/{model['id']}", json={"spec": case["spec"]})
    assert api.error(r, status, code)["message"] == err["message"]
    assert api.ok(api.get(f"/api/models/{model['id']}"))["version"] == 1
    assert api.weights(model["id"]) == before


# -- concurrent changes ---------------------------------------------------------------------
async def _queued(app, requests, before_release=None) -> list:
    """Send ``requests`` (client -> awaitable) while the worker is held, so that each one's
    job is queued behind the previous one; then let the worker go."""
    release = threading.Event()
    worker = app.state.playground.worker
    hold = asyncio.ensure_future(worker.call(release.wait, 10))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        tasks = []
        for send in requests:
            tasks.append(asyncio.ensure_future(send(c)))
            await asyncio.sleep(0.1)  # its dependencies resolve and its job is queued
        if before_release is not None:
            await before_release(c)
        release.set()
        await hold
        return await asyncio.gather(*tasks)


async def _setup(c) -> tuple[dict, str]:
    token = (await c.post("/api/workspaces")).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    model = await c.post("/api/models", json={"preset": "lenet5", "seed": 0}, headers=headers)
    return headers, model.json()["id"]


def _run_async(app, scenario):
    async def main():
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as c:
                headers, model_id = await _setup(c)
            return await scenario(headers, model_id)

    return asyncio.run(main())


def test_concurrent_freezes_are_all_kept(make_app):
    """Jobs queued with the same record version each see the previous one's change."""
    app = make_app()

    async def scenario(h, mid):
        url = f"/api/models/{mid}/parameters"
        layers = ["conv1", "conv2", "fc1", "fc2", "fc3"]
        patches = [
            lambda c, n=n: c.patch(f"{url}/{n}", json={"requires_grad": False}, headers=h)
            for n in layers
        ]
        results = await _queued(app, patches)
        assert [r.status_code for r in results] == [200] * 5
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            table = (await c.get(url, headers=h)).json()
            version = (await c.get(f"/api/models/{mid}", headers=h)).json()["version"]
        return table, version

    table, version = _run_async(app, scenario)
    assert table["totals"]["trainable"] == 0
    assert version == 6


def test_concurrent_freezes_survive_eviction_in_between(make_app):
    """A job queued with an old record builds the newest stored version when the live copy
    was evicted meanwhile."""
    app = make_app(model_cache_bytes=1)

    async def scenario(h, mid):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            other = (await c.post("/api/models", json={"preset": "mlp"}, headers=h)).json()["id"]
        url = f"/api/models/{mid}/parameters"
        steps = [
            lambda c: c.patch(f"{url}/conv1", json={"requires_grad": False}, headers=h),
            lambda c: c.get(f"/api/models/{other}/summary", headers=h),  # evicts lenet
            lambda c: c.patch(f"{url}/fc1", json={"requires_grad": False}, headers=h),
        ]
        await _queued(app, steps)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            return (await c.get(url, headers=h)).json()

    table = _run_async(app, scenario)
    frozen = {row["layer"] for row in table["rows"] if not row["requires_grad"]}
    assert frozen == {"conv1", "fc1"}


def test_a_deleted_model_stays_deleted(make_app):
    """A PUT whose job ends after a DELETE of the same model does not bring it back."""
    app = make_app()

    async def scenario(h, mid):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            spec = (await c.get(f"/api/models/{mid}", headers=h)).json()["spec"]

        async def delete(c):
            assert (await c.delete(f"/api/models/{mid}", headers=h)).status_code == 204

        put = [lambda c: c.put(f"/api/models/{mid}", json={"spec": spec}, headers=h)]
        (put_result,) = await _queued(app, put, before_release=delete)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            listed = (await c.get("/api/models", headers=h)).json()["models"]
            return put_result, listed, (await c.get(f"/api/models/{mid}", headers=h)).status_code

    put_result, listed, status = _run_async(app, scenario)
    assert listed == [] and status == 404
    assert put_result.status_code == 404, put_result.text  # the model went while it ran
    assert put_result.json()["error"]["code"]
