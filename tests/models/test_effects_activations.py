"""Activation curves, softmax and the Linear stack against torch called directly."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.catalog import CATALOG
from models.effects.activations import (
    activation_types,
    compose,
    curve,
    fit_affine,
    linear_stack,
    softmax,
)
from models.errors import SpecError


def test_every_elementwise_catalog_activation_is_offered() -> None:
    listed = {n for n, e in CATALOG.items() if e.category == "activation"}
    assert set(activation_types()) == listed - {"Softmax", "LogSoftmax"}
    assert {"ReLU", "LeakyReLU", "Tanh", "Hardtanh", "Sigmoid"} <= set(activation_types())


@pytest.mark.parametrize("type_name", activation_types())
def test_curve_and_derivative_equal_torchs(type_name: str) -> None:
    r = curve(type_name, x_min=-4.0, x_max=4.0, points=81)
    x = torch.linspace(-4.0, 4.0, 81, requires_grad=True)
    module = getattr(nn, type_name)(**r["args"])
    y = module(x)
    y.backward(torch.ones_like(y))
    assert torch.equal(r["x"], x.detach())
    assert torch.allclose(r["y"], y.detach())
    assert torch.allclose(r["dy"], x.grad)
    assert r["torch_call"].startswith(f"nn.{type_name}(")


@pytest.mark.parametrize(
    ("type_name", "args", "derivative"),
    [
        ("ReLU", {}, lambda x: (x > 0).float()),
        ("LeakyReLU", {"negative_slope": 0.2}, lambda x: torch.where(x > 0, 1.0, 0.2)),
        ("Sigmoid", {}, lambda x: torch.sigmoid(x) * (1 - torch.sigmoid(x))),
        ("Tanh", {}, lambda x: 1 - torch.tanh(x) ** 2),
        ("Hardtanh", {"min_val": -2.0, "max_val": 1.0}, lambda x: ((x > -2) & (x < 1)).float()),
        ("ELU", {"alpha": 0.5}, lambda x: torch.where(x > 0, 1.0, 0.5 * torch.exp(x))),
        ("PReLU", {"init": 0.1}, lambda x: torch.where(x > 0, 1.0, 0.1)),
    ],
)
def test_derivatives_by_hand(type_name: str, args: dict, derivative) -> None:
    r = curve(type_name, args, x_min=-3.0, x_max=3.0, points=60)  # x never hits a kink
    assert torch.allclose(r["dy"], derivative(r["x"]), atol=1e-6)


@pytest.mark.parametrize(
    ("type_name", "args", "phrase"),
    [
        ("Softmax", {}, "not an element-wise"),
        ("PReLU", {"num_parameters": 3}, "one slope"),
        ("Relu6", {}, "not in the catalog"),
        ("LeakyReLU", {"slope": 1}, "slope"),
    ],
)
def test_bad_activations_are_refused(type_name: str, args: dict, phrase: str) -> None:
    with pytest.raises(SpecError) as err:
        curve(type_name, args)
    assert phrase in err.value.message


def test_softmax_with_temperature() -> None:
    scores = [1.0, 2.0, 3.0, -1.0]
    for t in (0.1, 1.0, 10.0):
        r = softmax(scores, t)
        x = torch.tensor(scores)
        assert torch.allclose(r["softmax"], F.softmax(x / t, dim=0))
        assert torch.allclose(r["log_softmax"], F.log_softmax(x / t, dim=0))
        assert r["sum"] == pytest.approx(1.0)
        assert r["argmax"] == 2
    assert softmax(scores, 0.01)["max_probability"] > 0.999  # cold: one-hot
    assert softmax(scores, 1000.0)["entropy"] == pytest.approx(math.log(4), 1e-3)
    with pytest.raises(SpecError):
        softmax(scores, 0.0)


def test_composed_matrix_equals_the_stack() -> None:
    r = linear_stack([3, 4, 5, 2], seed=0)
    torch.manual_seed(0)
    l1, l2, l3 = nn.Linear(3, 4), nn.Linear(4, 5), nn.Linear(5, 2)
    for mine, ref in zip(r["layers"], (l1, l2, l3), strict=True):
        assert torch.equal(mine["weight"], ref.weight.detach())
        assert torch.equal(mine["bias"], ref.bias.detach())
    w = l3.weight @ l2.weight @ l1.weight
    b = l3.weight @ (l2.weight @ l1.bias + l2.bias) + l3.bias
    assert torch.allclose(r["composed"]["weight"], w.detach(), atol=1e-6)
    assert torch.allclose(r["composed"]["bias"], b.detach(), atol=1e-6)
    x = r["x"]
    with torch.no_grad():
        stack = l3(l2(l1(x)))
        relu_stack = l3(F.relu(l2(F.relu(l1(x)))))
    assert torch.allclose(r["linear"]["output"], stack)
    assert torch.allclose(r["composed_output"], stack, atol=1e-6)
    assert r["linear"]["max_abs_diff"] < 1e-5
    assert r["linear"]["fit"]["relative_residual"] < 1e-5
    assert torch.allclose(r["nonlinear"]["output"], relu_stack)


def test_with_relu_between_no_affine_map_matches() -> None:
    r = linear_stack([3, 16, 16, 2], seed=1, samples=1024)
    assert r["nonlinear"]["max_abs_diff"] > 1e-2
    fit = r["nonlinear"]["fit"]
    assert fit["relative_residual"] > 0.05
    assert fit["residual_rms"] > 1e-3
    assert r["linear"]["fit"]["relative_residual"] < 1e-5


def test_fit_affine_recovers_an_affine_map() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    w, b = torch.randn(2, 3, generator=g), torch.randn(2, generator=g)
    fit = fit_affine(x, x @ w.T + b)
    assert torch.allclose(fit["weight"], w, atol=1e-5)
    assert torch.allclose(fit["bias"], b, atol=1e-5)
    assert fit["relative_residual"] < 1e-6


def test_compose_without_bias() -> None:
    layers = [nn.Linear(2, 3, bias=False), nn.Linear(3, 2, bias=False)]
    w, b = compose(layers)
    assert torch.allclose(w, (layers[1].weight @ layers[0].weight).detach())
    assert torch.equal(b, torch.zeros(2))


def test_a_stack_needs_two_layers() -> None:
    with pytest.raises(SpecError, match="at least 3"):
        linear_stack([3, 2])
