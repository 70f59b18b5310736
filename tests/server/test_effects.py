"""The effects lab API: every route against torch, the tutorial's cases, refused inputs."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

ROUTES = [
    "pooling",
    "normalization",
    "dropout",
    "activations",
    "activations/softmax",
    "activations/linear-stack",
    "losses",
    "linear",
]


def effect(api, route: str, **body: Any) -> dict[str, Any]:
    return api.ok(api.post(f"/api/effects/{route}", json=body))


def refused(api, route: str, status: int, code: str, **body: Any) -> dict[str, Any]:
    return api.error(api.post(f"/api/effects/{route}", json=body), status, code)


def tensor(api, payload: dict[str, Any]) -> torch.Tensor:
    return torch.from_numpy(api.decode(payload).copy())


def seeded_rand(*shape: int) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(*shape)


# -- every route ------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
def test_every_route_needs_the_workspace_token(api, route: str) -> None:
    r = api.client.post(f"/api/effects/{route}", json={})
    api.error(r, 401, "unauthorized")


@pytest.mark.parametrize("route", ROUTES)
def test_every_route_answers_its_tutorial_preset_and_forbids_extra_fields(api, route) -> None:
    body = effect(api, route, preset="tutorial")
    assert body
    err = refused(api, route, 422, "invalid_request", preset="tutorial", surprise=1)
    assert "surprise" in err["message"]


def test_openapi_documents_every_route_with_the_tutorial_example(client) -> None:
    spec = client.get("/openapi.json").json()
    for route in ROUTES:
        op = spec["paths"][f"/api/effects/{route}"]["post"]
        assert op["summary"] and op["description"]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        assert "$ref" in ok
        assert {"401", "413", "422"} <= set(op["responses"])
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = spec["components"]["schemas"][ref.split("/")[-1]]
        assert schema["examples"], route


# -- pooling ----------------------------------------------------------------------------------
def test_pooling_tutorial_is_one_click(api) -> None:
    body = effect(api, "pooling", preset="tutorial")
    x = seeded_rand(1, 6, 6)
    api.assert_same(body["input"], x)
    api.assert_same(body["output"], nn.MaxPool2d(3)(x))
    quadrants = [x[0, :3, :3], x[0, :3, 3:], x[0, 3:, :3], x[0, 3:, 3:]]
    assert tensor(api, body["output"]).flatten().tolist() == [float(q.max()) for q in quadrants]
    assert body["torch_call"] == "nn.MaxPool2d(kernel_size=3)(x)"
    assert [c["indices"] for c in body["windows"][1]["cells"]] == [[0, 1, 2], [3, 4, 5]]
    winners = body["winners"]["data"][0]
    assert [[float(x.flatten()[w]) for w in row] for row in winners] == body["output"]["data"][0]
    assert effect(api, "pooling") == body  # the defaults are the tutorial's case


def test_pooling_min_and_avg_with_padding(api) -> None:
    source = {"kind": "random", "shape": [2, 5, 7], "seed": 4}
    x = torch.randn(2, 5, 7, generator=torch.Generator().manual_seed(4))
    mn = effect(api, "pooling", source=source, op="min", kernel_size=2, padding=1, dilation=2)
    api.assert_same(mn["output"], -F.max_pool2d(-x, 2, padding=1, dilation=2))
    av = effect(api, "pooling", source=source, op="avg", kernel_size=3, stride=2, padding=1)
    api.assert_same(av["output"], F.avg_pool2d(x, 3, stride=2, padding=1))
    assert "winners" not in av and av["divisor"]["shape"] == [3, 4]


def test_pooling_a_model_layer_and_f16_winners(api, lenet) -> None:
    inputs = {"x": {"kind": "random", "seed": 2}}
    run = api.run(lenet["id"], inputs=inputs, capture=["relu2"], encoding="f32")
    relu2 = tensor(api, run["activations"]["relu2"]["tensor"])
    source = {"kind": "model", "model_id": lenet["id"], "layer": "relu2", "inputs": inputs}
    body = effect(api, "pooling", source=source, kernel_size=2, encoding="f32")
    api.assert_same(body["output"], F.max_pool2d(relu2, 2))
    f16 = effect(api, "pooling", source=source, kernel_size=2, encoding="f16")
    assert f16["winners"]["encoding"] == "f32" and f16["output"]["encoding"] == "f16"


def test_kernel_larger_than_the_padded_input_is_refused(api) -> None:
    err = refused(
        api,
        "pooling",
        422,
        "kernel_too_large",
        preset="tutorial",
        kernel_size=3,
        dilation=4,
        padding=1,
    )
    assert "spans 9" in err["message"] and "only 8 there (6 + 2×1 padding)" in err["message"]
    err = refused(api, "pooling", 422, "kernel_too_large", kernel_size=7)
    assert "kernel spans 7" in err["message"] and "padded input is only 6" in err["message"]
    assert err["detail"] == {"axis": "H", "kernel_span": 7, "padded_size": 6}


def test_pooling_sizes_over_the_limits(api) -> None:
    big = {"kind": "random", "shape": [1, 2000, 1000]}
    refused(api, "pooling", 413, "limit_exceeded", source=big)
    refused(api, "pooling", 422, "invalid_request", kernel_size=5000)


# -- normalization ----------------------------------------------------------------------------
def test_normalization_tutorial_is_one_click(api) -> None:
    body = effect(api, "normalization", preset="tutorial", steps=3)
    x = seeded_rand(1, 4, 4) * 20 + 5
    api.assert_same(body["input"], x)
    bn = nn.BatchNorm1d(4)
    api.assert_same(body["output"], bn(x).detach())
    assert abs(body["before_stats"]["mean"] - 15) < 3 and abs(body["after_stats"]["mean"]) < 1e-5
    bn(x), bn(x)
    api.assert_same(body["running"]["mean"], bn.running_mean)
    api.assert_same(body["running"]["var"], bn.running_var)
    assert body["running"]["num_batches_tracked"] == 3
    api.assert_same(body["eval_output"], bn.eval()(x).detach())
    assert body["torch_call"].startswith("nn.BatchNorm1d(4")


def test_normalization_layernorm_eval_and_refusals(api) -> None:
    body = effect(api, "normalization", layer="LayerNorm", mode="eval")
    assert body["eval_output"] == body["train_output"] and "running" not in body
    refused(api, "normalization", 422, "invalid_arg", layer="GroupNorm", num_groups=3)
    refused(api, "normalization", 422, "input_shape_mismatch", layer="BatchNorm2d")
    refused(
        api,
        "normalization",
        413,
        "limit_exceeded",
        steps=1000,
        source={"kind": "random", "shape": [4, 1000]},
    )


# -- dropout ----------------------------------------------------------------------------------
def test_dropout_tutorial_is_one_click(api) -> None:
    body = effect(api, "dropout", preset="tutorial")
    assert body["p"] == 0.4 and len(body["passes"]) == 2 and body["passes_differ"]
    x = seeded_rand(1, 4, 4)
    torch.manual_seed(0)
    layer = nn.Dropout(0.4)
    for one in body["passes"]:
        api.assert_same(one["output"], layer(x))
    assert body["survivors_scaled"] and body["scale"] == pytest.approx(1 / 0.6)
    assert effect(api, "dropout")["p"] == 0.5  # torch's default without the preset


def test_dropout_eval_mode_is_the_identity(api) -> None:
    body = effect(api, "dropout", preset="tutorial", mode="eval", passes=3)
    assert body["identity"] and not body["passes_differ"]
    assert all(one["output"] == body["input"] for one in body["passes"])


@pytest.mark.parametrize("p", [1.2, -0.1, 1.0])
def test_p_outside_zero_one_is_refused(api, p: float) -> None:
    err = refused(api, "dropout", 422, "invalid_request", p=p)
    assert err["message"].startswith("The request is not valid: p:")


def test_dropout_sizes_over_the_limits(api) -> None:
    source = {"kind": "random", "shape": [1000, 1000]}
    refused(api, "dropout", 413, "limit_exceeded", source=source, passes=2)
    refused(api, "dropout", 422, "invalid_request", passes=1001)
    refused(api, "dropout", 422, "input_shape_mismatch", layer="Dropout2d")


# -- activations ------------------------------------------------------------------------------
def test_activation_curves_equal_torch(api) -> None:
    body = effect(api, "activations", preset="tutorial", points=11)
    assert [c["type"] for c in body["curves"]] == [
        "ReLU",
        "LeakyReLU",
        "Tanh",
        "Hardtanh",
        "Sigmoid",
    ]
    assert "GELU" in body["available"] and "Softmax" not in body["available"]
    for c in body["curves"]:
        x = torch.linspace(-5, 5, 11, requires_grad=True)
        y = getattr(nn, c["type"])()(x)
        y.sum().backward()
        api.assert_same(c["y"], y.detach())
        api.assert_same(c["dy"], x.grad)
    leaky = effect(
        api, "activations", functions=[{"type": "LeakyReLU", "args": {"negative_slope": 0.2}}]
    )
    assert leaky["curves"][0]["dy"]["data"][0] == pytest.approx(0.2)


def test_bad_activations_are_refused(api) -> None:
    refused(api, "activations", 422, "invalid_arg", functions=[{"type": "Softmax"}])
    refused(api, "activations", 422, "unknown_layer_type", functions=[{"type": "Relu9"}])
    refused(api, "activations", 422, "invalid_request", points=2002)
    refused(api, "activations", 422, "invalid_arg", x_min=2.0, x_max=1.0)


def test_softmax_with_a_temperature(api) -> None:
    body = effect(api, "activations/softmax", scores=[1.0, 2.0, 3.0, 0.5], temperature=0.5)
    x = torch.tensor([1.0, 2.0, 3.0, 0.5])
    api.assert_same(body["softmax"], F.softmax(x / 0.5, dim=0))
    api.assert_same(body["log_softmax"], F.log_softmax(x / 0.5, dim=0))
    assert body["sum"] == pytest.approx(1.0) and body["argmax"] == 2
    refused(api, "activations/softmax", 422, "invalid_request", temperature=0)


def test_linear_stack_is_one_matrix_until_relu(api) -> None:
    body = effect(api, "activations/linear-stack", preset="tutorial")
    torch.manual_seed(0)
    layers = [nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 2)]
    w = layers[2].weight @ layers[1].weight @ layers[0].weight
    got = tensor(api, body["composed"]["weight"])
    assert torch.allclose(got, w.detach(), atol=1e-6)
    assert body["linear"]["max_abs_diff"] < 1e-5
    assert body["linear"]["fit"]["relative_residual"] < 1e-5
    assert body["nonlinear"]["fit"]["relative_residual"] > 0.05
    assert body["nonlinear"]["max_abs_diff"] > 1e-3
    refused(api, "activations/linear-stack", 422, "invalid_request", sizes=[3, 200, 2])
    refused(api, "activations/linear-stack", 422, "invalid_request", sizes=[3] * 10)


# -- losses -----------------------------------------------------------------------------------
LOSS_ORACLES = {
    "MSELoss": nn.MSELoss(),
    "L1Loss": nn.L1Loss(),
    "SmoothL1Loss": nn.SmoothL1Loss(),
    "HuberLoss": nn.HuberLoss(),
    "CrossEntropyLoss": nn.CrossEntropyLoss(),
    "NLLLoss": nn.NLLLoss(),
    "BCELoss": nn.BCELoss(),
    "BCEWithLogitsLoss": nn.BCEWithLogitsLoss(),
    "KLDivLoss": nn.KLDivLoss(),
}


@pytest.mark.parametrize("name", list(LOSS_ORACLES))
def test_each_loss_with_its_example_equals_torch(api, name: str) -> None:
    body = effect(api, "losses", loss=name)
    x = tensor(api, body["input"])
    t = tensor(api, body["target"])
    if body["target_kind"] == "indices":
        t = t.long()
    leaf = x.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's reduction='mean' warning
        value = LOSS_ORACLES[name](leaf, t)
    value.backward()
    assert body["value"] == pytest.approx(float(value.detach()), abs=1e-6)
    api.assert_same(body["grad"], leaf.grad)
    assert body["curve"]["x"]["shape"] == [101]


def test_cross_entropy_tutorial_with_options(api) -> None:
    body = effect(api, "losses", preset="tutorial", label_smoothing=0.1, weight=[1.0, 2.0, 0.5])
    x = torch.tensor([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]])
    ref = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5]), label_smoothing=0.1)
    assert body["value"] == pytest.approx(float(ref(x, torch.tensor([0, 1]))))
    assert body["torch_call"].startswith("nn.CrossEntropyLoss(weight=")


def test_a_loss_of_a_models_output(api, lenet) -> None:
    inputs = {"x": {"kind": "random", "seed": 1}}
    run = api.run(lenet["id"], inputs=inputs, capture=["fc3"], encoding="f32")
    logits = tensor(api, run["activations"]["fc3"]["tensor"])
    source = {"kind": "model", "model_id": lenet["id"], "layer": "fc3", "inputs": inputs}
    body = effect(
        api, "losses", loss="CrossEntropyLoss", input=source, target={"kind": "tensor", "data": [3]}
    )
    want = F.cross_entropy(logits, torch.tensor([3]))
    assert body["value"] == pytest.approx(float(want), rel=1e-4)


def test_mismatched_prediction_and_target_shapes_are_refused(api) -> None:
    err = refused(
        api,
        "losses",
        422,
        "shape_mismatch",
        loss="MSELoss",
        target={"kind": "tensor", "data": [1.0, 2.0]},
    )
    assert "needs a target of the input's shape 1×3; the target is 2" in err["message"]
    err = refused(
        api,
        "losses",
        422,
        "shape_mismatch",
        loss="CrossEntropyLoss",
        target={"kind": "tensor", "data": [[0, 1]]},
    )
    assert "class indices of shape 2 or class probabilities of shape 2×3" in err["message"]
    refused(api, "losses", 422, "invalid_request", curve_points=5000)
    refused(api, "losses", 422, "invalid_request", loss="CosineLoss")
    big = {"kind": "random", "shape": [1000, 1000]}
    refused(api, "losses", 413, "limit_exceeded", input=big, target=big)


@pytest.mark.parametrize("loss", [{}, [], ["MSELoss"], 3])
def test_a_loss_of_the_wrong_type_is_a_4xx_naming_the_field(api, loss) -> None:
    case = {"input": {"kind": "tensor", "data": [[2, 1, 0.1], [0.5, 2.5, 0.3]]}}
    case["target"] = {"kind": "tensor", "data": [0, 1]}
    err = refused(api, "losses", 422, "invalid_request", loss=loss, **case)
    assert "loss" in err["message"]


def test_the_labs_choices_and_tutorial_cases_come_from_the_request_schemas(client) -> None:
    from models.effects.losses import LOSSES
    from server.schemas.effects import DROPOUT_TUTORIAL

    body = client.get("/api/effects").json()  # no token: it is the page's static data
    assert body["dropout"]["options"]["layer"] == ["Dropout", "Dropout1d", "Dropout2d"]
    assert body["dropout"]["tutorial"] == DROPOUT_TUTORIAL
    assert body["dropout"]["defaults"]["p"] == 0.5
    assert body["losses"]["options"]["loss"] == list(LOSSES)
    assert body["pooling"]["options"]["op"][0] == "max"
    assert "encoding" not in body["pooling"]["options"]


# -- linear -----------------------------------------------------------------------------------
def test_linear_by_hand_tutorial(api) -> None:
    body = effect(api, "linear", preset="tutorial")
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    x = seeded_rand(1, 3)
    api.assert_same(body["weight"], lin.weight.detach())
    api.assert_same(body["y"], lin(x).detach())
    assert body["max_abs_diff"] < 1e-6 and body["torch_call"] == "nn.Linear(3, 2)"
    for step in body["steps"]:
        assert step["value"] == pytest.approx(sum(step["products"]) + step["bias"])
        assert step["value"] == pytest.approx(step["torch"], abs=1e-6)


def test_linear_layer_of_a_model(api, lenet) -> None:
    inputs = {"x": {"kind": "random", "seed": 5}}
    run = api.run(lenet["id"], inputs=inputs, capture=["fc3"], encoding="f32")
    source = {"kind": "model", "model_id": lenet["id"], "layer": "relu4", "inputs": inputs}
    body = effect(api, "linear", model_id=lenet["id"], layer="fc3", x=source, encoding="f32")
    assert body["source"] == "model" and body["in_features"] == 84
    weight = api.ok(api.get(f"/api/models/{lenet['id']}/parameters/fc3.weight?encoding=f32"))
    assert body["weight"]["data"] == weight["tensor"]["data"]
    api.assert_same(body["y"], tensor(api, run["activations"]["fc3"]["tensor"]))
    assert len(body["steps"]) == 10 and body["max_abs_diff"] < 1e-5


def test_linear_refusals(api, lenet) -> None:
    refused(api, "linear", 422, "invalid_arg", model_id=lenet["id"], layer="conv1")
    refused(api, "linear", 404, "unknown_layer", model_id=lenet["id"], layer="nope")
    refused(api, "linear", 404, "model_not_found", model_id="nope", layer="fc3")
    refused(api, "linear", 422, "invalid_request", model_id=lenet["id"])
    refused(api, "linear", 422, "shape_mismatch", x={"kind": "tensor", "data": [[1.0, 2.0]]})
    other = api.other()
    refused(other, "linear", 404, "model_not_found", model_id=lenet["id"], layer="fc3")
