"""routers/attributions.py: the API's figures equal Captum and torch called directly.

The oracle model is ``build(spec, seed=0)`` called as ``model(x)``, the same weights as the
API's model created from the preset with seed 0; results travel as f32 and must be equal bit
for bit on the CPU (within float tolerance on a GPU, see ``Api.assert_same``).
"""

from __future__ import annotations

import time

import pytest
import torch
from captum.attr import (
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    NoiseTunnel,
    Occlusion,
    Saliency,
)
from safetensors.torch import load as st_load
from shared_specs import MLP

from models.build import build
from models.presets import PRESETS


def oracle_model(preset: str):
    return build(PRESETS[preset].spec, seed=0).model.eval()


def sample(seed: int, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def tensor_input(x: torch.Tensor) -> dict:
    return {"kind": "tensor", "data": x.tolist()}


def leaf(x):
    return x.clone().requires_grad_()


def attribute(api, model_id: str, **body):
    return api.ok(api.post(f"/api/models/{model_id}/attribute", json=body))


@pytest.mark.parametrize("preset", ["lenet5", "mlp"])
def test_every_method_equals_captum(api, preset):
    made = api.create(preset=preset, seed=0)
    m = oracle_model(preset)
    shape = PRESETS[preset].spec["inputs"]["x"]["shape"]
    x = sample(1, *shape)
    inputs = {"x": tensor_input(x)}
    target = int(m(x)[0].argmax())

    r = attribute(api, made["id"], method="saliency", inputs=inputs)
    assert r["target"] == target
    api.assert_same(r["attribution"]["tensor"], Saliency(m).attribute(leaf(x), target, abs=True))
    api.assert_same(r["output"], m(x))
    assert 0 < r["compute_ms"] < r["elapsed_ms"]  # Captum's call, within the job

    r = attribute(api, made["id"], method="integrated_gradients", steps=20, baseline=0.1,
                  target=2, inputs=inputs)  # fmt: skip
    ig, delta = IntegratedGradients(m).attribute(
        leaf(x), baselines=0.1, target=2, n_steps=20,
        internal_batch_size=r["captum"]["internal_batch_size"], return_convergence_delta=True,
    )  # fmt: skip
    api.assert_same(r["attribution"]["tensor"], ig)
    assert r["delta"] == pytest.approx(float(delta.abs().max()))
    assert r["passes"] == 22

    r = attribute(api, made["id"], method="smoothgrad", samples=5, stdev=0.2, seed=7,
                  inputs=inputs)  # fmt: skip
    torch.manual_seed(7)
    sg = NoiseTunnel(Saliency(m)).attribute(
        leaf(x), nt_type="smoothgrad", nt_samples=5, stdevs=0.2, target=target, abs=True,
        nt_samples_batch_size=r["captum"]["nt_samples_batch_size"],
    )  # fmt: skip
    api.assert_same(r["attribution"]["tensor"], sg)

    r = attribute(api, made["id"], method="occlusion", window=[5, 5], stride=[4, 4],
                  inputs=inputs)  # fmt: skip
    occ = Occlusion(m).attribute(
        x, sliding_window_shapes=(1, 5, 5), strides=(1, 4, 4), baselines=0.0, target=target,
        perturbations_per_eval=r["captum"]["perturbations_per_eval"],
    )  # fmt: skip
    api.assert_same(r["attribution"]["tensor"], occ)


def test_gradcam_equals_captum_upsampled(api, lenet):
    m = oracle_model("lenet5")
    x = sample(2, 1, 1, 32, 32)
    r = attribute(api, lenet["id"], method="gradcam", layer="conv2", target=6,
                  inputs={"x": tensor_input(x)})  # fmt: skip
    raw = LayerGradCam(m, m.conv2).attribute(leaf(x), target=6, relu_attributions=True)
    api.assert_same(r["map"]["tensor"], raw)
    api.assert_same(
        r["attribution"]["tensor"], LayerAttribution.interpolate(raw, (32, 32), "bilinear")
    )
    assert r["map"]["stats"]["max"] == pytest.approx(float(raw.detach().max()))


@pytest.mark.parametrize(
    ("body", "status", "code", "phrase"),
    [
        ({"method": "gradcam", "layer": "fc1"}, 422, "gradcam_needs_conv_layer", "conv1"),
        ({"method": "gradcam", "layer": "nope"}, 404, "unknown_layer", "nope"),
        ({"method": "integrated_gradients", "steps": 5000}, 413, "limit_exceeded",
         "PLAYGROUND_MAX_ATTRIBUTION_PASSES"),
        ({"method": "occlusion", "window": [1, 1], "stride": [1, 1]}, 413, "limit_exceeded",
         "window"),
        ({"method": "lime"}, 422, None, "method"),
        ({"method": "saliency", "inputs": {"y": {"kind": "random"}}}, 422, "invalid_input", "y"),
    ],
)  # fmt: skip
def test_bad_requests(api, lenet, body, status, code, phrase):
    err = api.error(api.post(f"/api/models/{lenet['id']}/attribute", json=body), status, code)
    assert phrase in err["message"] or phrase in str(err.get("detail"))


def test_limit_is_a_setting(make_api):
    api = make_api(max_attribution_passes=10)
    made = api.create(preset="lenet5", seed=0)
    url = f"/api/models/{made['id']}/attribute"
    err = api.error(api.post(url, json={"method": "integrated_gradients", "steps": 9}), 413)
    assert err["detail"]["limit"] == 10
    api.ok(api.post(url, json={"method": "integrated_gradients", "steps": 8}))


def test_token_model_refused(api):
    made = api.create(preset="lstm_tagger", seed=0)
    r = api.post(f"/api/models/{made['id']}/attribute", json={"method": "saliency"})
    api.error(r, 422, "attribution_needs_float_input")


# -- gradients ---------------------------------------------------------------------------------
def test_gradients_equal_backward(api, lenet):
    x = sample(3, 1, 1, 32, 32)
    r = api.ok(
        api.post(
            f"/api/models/{lenet['id']}/gradients",
            json={
                "inputs": {"x": tensor_input(x)},
                "target": 1,
                "parameters": True,
                "encoding": "f32",
                "downsample": False,
            },
        )
    )
    m = oracle_model("lenet5")
    xh, acts = leaf(x), {}
    for name in ("conv1", "relu4"):
        getattr(m, name).register_forward_hook(lambda _m, _a, o, n=name: acts.setdefault(n, o))
    out = m(xh)
    for a in acts.values():
        a.retain_grad()
    out[0, 1].backward()
    api.assert_same(r["inputs"]["x"]["tensor"], xh.grad)
    api.assert_same(r["activations"]["conv1"]["tensor"], acts["conv1"].grad)
    api.assert_same(r["activations"]["relu4"]["tensor"], acts["relu4"].grad)
    api.assert_same(r["parameters"]["fc1.weight"]["tensor"], m.fc1.weight.grad)
    assert r["target"] == 1
    assert r["objective"] == pytest.approx(float(out[0, 1].detach()))
    assert 0 < r["compute_ms"] < r["elapsed_ms"]


def test_tagger_gradients_on_embeddings(api):
    made = api.create(preset="lstm_tagger", seed=0)
    text = "The dog ate the apple"
    r = api.ok(
        api.post(
            f"/api/models/{made['id']}/gradients",
            json={
                "inputs": {"sentence": {"kind": "tokens", "text": text}},
                "layers": ["word_embeddings"],
                "loss": {"kind": "nll", "labels": [0, 1, 2, 0, 1]},
                "encoding": "f32",
            },
        )
    )
    m = oracle_model("lstm_tagger")
    kept = {}
    m.word_embeddings.register_forward_hook(lambda _m, _a, o: kept.setdefault("e", o))
    out = m(torch.tensor([0, 1, 2, 3, 4]))
    kept["e"].retain_grad()
    torch.nn.functional.nll_loss(out, torch.tensor([0, 1, 2, 0, 1])).backward()
    api.assert_same(r["activations"]["word_embeddings"]["tensor"], kept["e"].grad)
    assert r["inputs"] == {}


# -- interventions -----------------------------------------------------------------------------
def test_switching_off_a_channel_equals_a_hook(api, lenet):
    x = sample(4, 1, 1, 32, 32)
    body = {
        "inputs": {"x": tensor_input(x)},
        "encoding": "f32",
        "interventions": [
            {"layer": "conv1", "op": "zero", "channels": [2]},
            {"layer": "fc1", "op": "scale", "channels": [0, 1, 2], "factor": -1.0},
        ],
    }
    r = api.ok(api.post(f"/api/models/{lenet['id']}/intervene", json=body))
    m = oracle_model("lenet5")

    def off(_m, _a, o):
        o = o.clone()
        o[:, 2] = 0
        return o

    def flip(_m, _a, o):
        o = o.clone()
        o[:, :3] *= -1
        return o

    m.conv1.register_forward_hook(off)
    m.fc1.register_forward_hook(flip)
    with torch.no_grad():
        want = m(x)
        conv1 = m.conv1(x)
    api.assert_same(r["outputs"]["fc3"], want)
    api.assert_same(r["activations"]["conv1"]["tensor"], conv1)
    plain = api.run(lenet["id"], inputs={"x": tensor_input(x)}, encoding="f32")
    assert plain["outputs"]["fc3"] != r["outputs"]["fc3"]  # the hooks are gone afterwards


def test_patch_from_another_input(api, lenet):
    x, clean = sample(5, 1, 1, 32, 32), sample(6, 1, 1, 32, 32)
    body = {
        "inputs": {"x": tensor_input(x)},
        "encoding": "f32",
        "interventions": [{"layer": "pool1", "op": "patch", "source": {"x": tensor_input(clean)}}],
    }
    r = api.ok(api.post(f"/api/models/{lenet['id']}/intervene", json=body))
    m = oracle_model("lenet5")
    with torch.no_grad():
        src = m.pool1(m.relu1(m.conv1(clean)))
        m.pool1.register_forward_hook(lambda *_: src)
        api.assert_same(r["outputs"]["fc3"], m(x))


@pytest.mark.parametrize(
    ("iv", "status", "code"),
    [
        ({"layer": "nope", "op": "zero"}, 404, "unknown_layer"),
        ({"layer": "conv1", "op": "zero", "channels": [6]}, 422, "invalid_intervention"),
        ({"layer": "conv1", "op": "add", "channels": [0], "vector": [1, 2]}, 422, None),
        ({"layer": "conv1", "op": "explode"}, 422, None),
    ],
)
def test_bad_interventions(api, lenet, iv, status, code):
    r = api.post(f"/api/models/{lenet['id']}/intervene", json={"interventions": [iv]})
    api.error(r, status, code)


# -- feature visualization -----------------------------------------------------------------
def test_featvis_seeded_and_bounded(api, lenet):
    url = f"/api/models/{lenet['id']}/featvis"
    body = {"layer": "conv2", "channel": 4, "steps": 5, "seed": 2}
    a, b = api.ok(api.post(url, json=body)), api.ok(api.post(url, json=body))
    assert a["input"]["tensor"] == b["input"]["tensor"]
    assert a["steps"] == 5 and len(a["objective"]) == 5
    api.error(api.post(url, json={**body, "steps": 100_000}), 413, "limit_exceeded")
    api.error(api.post(url, json={**body, "layer": "nope"}), 404, "unknown_layer")


# -- at a checkpoint ---------------------------------------------------------------------------
DIGITS = {
    "dataset": "digits",
    "transforms": [{"kind": "scale"}, {"kind": "flatten"}],
    "optimizer": {"name": "sgd", "args": {"lr": 0.1}},
    "loss": {"name": "CrossEntropyLoss"},
    "batch_size": 16,
    "steps": 10,
    "seed": 3,
}


def test_attribution_at_a_checkpoint(api):
    made = api.create(spec=MLP, seed=0)
    base = f"/api/models/{made['id']}/trainings"
    t = api.ok(api.post(base, json=DIGITS), 202)
    deadline = time.monotonic() + 120
    while api.ok(api.get(f"{base}/{t['id']}"))["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    x = sample(8, 1, 64)
    body = {"method": "saliency", "target": 3, "inputs": {"x": tensor_input(x)}}
    at_0 = attribute(api, made["id"], checkpoint={"training": t["id"], "step": 0}, **body)
    now = attribute(api, made["id"], **body)
    assert at_0["checkpoint"] == {"training": t["id"], "step": 0}
    seeded = build(MLP, seed=0).model.eval()
    api.assert_same(at_0["attribution"]["tensor"], Saliency(seeded).attribute(leaf(x), 3))
    trained = build(MLP, seed=0).model.eval()
    trained.load_state_dict(st_load(api.weights(made["id"])))
    api.assert_same(now["attribution"]["tensor"], Saliency(trained).attribute(leaf(x), 3))
    assert now["attribution"]["tensor"] != at_0["attribution"]["tensor"]
    r = api.post(
        f"/api/models/{made['id']}/attribute",
        json={**body, "checkpoint": {"training": "nope", "step": 0}},
    )
    api.error(r, 404, "training_not_found")


def test_integrated_gradients_from_a_baseline_input(api, lenet):
    m = oracle_model("lenet5")
    x, base = sample(9, 1, 1, 32, 32), sample(10, 1, 1, 32, 32) * 0.1
    r = attribute(
        api,
        lenet["id"],
        method="integrated_gradients",
        steps=12,
        target=0,
        inputs={"x": tensor_input(x)},
        baseline_input=tensor_input(base),
    )
    want = IntegratedGradients(m).attribute(
        leaf(x), baselines=base, target=0, n_steps=12,
        internal_batch_size=r["captum"]["internal_batch_size"],
    )  # fmt: skip
    api.assert_same(r["attribution"]["tensor"], want)
    bad = {"kind": "tensor", "data": [[1.0, 2.0]]}
    r = api.post(
        f"/api/models/{lenet['id']}/attribute",
        json={"method": "integrated_gradients", "baseline_input": bad},
    )
    api.error(r, 422)


def test_attribution_without_statistics(api, lenet):
    """stats: false leaves the statistics out and nothing else (the Why tab draws none)."""
    body = {"method": "gradcam", "layer": "conv2", "target": 1}
    full = attribute(api, lenet["id"], **body)
    bare = attribute(api, lenet["id"], **body, stats=False)
    for key in ("attribution", "map"):
        assert "stats" in full[key] and "stats" not in bare[key]
        assert bare[key]["tensor"] == full[key]["tensor"]


def test_gradients_without_statistics(api, lenet):
    """stats: false leaves every gradient's statistics out and nothing else."""
    url = f"/api/models/{lenet['id']}/gradients"
    body = {"layers": ["conv1"], "parameters": True, "target": 2, "encoding": "f32"}
    full = api.ok(api.post(url, json=body))
    bare = api.ok(api.post(url, json={**body, "stats": False}))
    for group in ("inputs", "activations", "parameters"):
        assert full[group] and set(full[group]) == set(bare[group])
        for name, grad in full[group].items():
            assert "stats" in grad and "stats" not in bare[group][name]
            assert bare[group][name]["tensor"] == grad["tensor"]
    assert (bare["objective"], bare["target"]) == (full["objective"], full["target"])
