"""Activation functions: f(x) and f′(x), softmax with a temperature, and the Linear stack.

:func:`curve` draws any element-wise activation of the catalog (category ``activation``)
built with its catalog args; f′ comes from autograd (at a kink such as ReLU's 0, torch's
choice: 0). :func:`softmax` turns a vector of scores into probabilities at a temperature.
:func:`linear_stack` makes the tutorial's point: N Linear layers with nothing between them
are one affine map ``x·Wᵀ + b`` with ``W = W_N ⋯ W_1``; with an activation between them no
affine map fits (the least-squares fit leaves a clear residual).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.catalog import CATALOG, lookup
from models.errors import SpecError

# activations that act on a whole vector (or change the shape), not element by element
VECTOR_TYPES = frozenset({"Softmax", "LogSoftmax", "Softmin", "Softmax2d", "GLU"})


def activation_types() -> list[str]:
    """The element-wise activation types of the catalog, in catalog order."""
    return [
        name
        for name, entry in CATALOG.items()
        if entry.category == "activation" and name not in VECTOR_TYPES
    ]


def make_activation(type_name: str, args: Mapping[str, Any] | None = None) -> tuple:
    """Build an element-wise catalog activation; returns ``(module, resolved args, entry)``."""
    entry = lookup(type_name)
    if entry.category != "activation" or type_name in VECTOR_TYPES:
        raise SpecError(
            "invalid_arg",
            f"{type_name} is not an element-wise activation; pick one of "
            f"{', '.join(activation_types())} (softmax has its own experiment)",
        )
    resolved = entry.validate_args(type_name, args or {})
    if type_name == "PReLU" and resolved.get("num_parameters", 1) != 1:
        raise SpecError(
            "invalid_arg", "PReLU is drawn with one slope; set num_parameters to 1", layer=None
        )
    return entry.construct(resolved), resolved, entry


def _call(type_name: str, args: Mapping[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return f"nn.{type_name}({shown})"


def curve(
    type_name: str,
    args: Mapping[str, Any] | None = None,
    *,
    x_min: float = -5.0,
    x_max: float = 5.0,
    points: int = 201,
) -> dict[str, Any]:
    """f(x) and f′(x) (autograd) at ``points`` evenly spaced x in [x_min, x_max]."""
    if not x_min < x_max:
        raise SpecError("invalid_arg", f"x_min ({x_min}) must be below x_max ({x_max})")
    if points < 2:
        raise SpecError("invalid_arg", "points must be at least 2")
    module, resolved, entry = make_activation(type_name, args)
    x = torch.linspace(x_min, x_max, points, requires_grad=True)
    y = module(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    return {
        "type": type_name,
        "args": resolved,
        "doc": entry.doc,
        "torch_call": _call(type_name, resolved),
        "x": x.detach(),
        "y": y.detach(),
        "dy": dy,
    }


def softmax(scores: Sequence[float] | torch.Tensor, temperature: float = 1.0) -> dict[str, Any]:
    """softmax(x/T) and log_softmax(x/T) of a vector, with its entropy (in nats)."""
    if not temperature > 0:
        raise SpecError("invalid_arg", f"temperature must be positive, not {temperature}")
    x = torch.as_tensor(scores, dtype=torch.float32)
    if x.ndim != 1 or x.numel() == 0:
        raise SpecError("invalid_arg", "softmax takes a non-empty vector of scores")
    scaled = x / temperature
    probs = F.softmax(scaled, dim=0)
    logp = F.log_softmax(scaled, dim=0)
    return {
        "x": x,
        "temperature": temperature,
        "scaled": scaled,
        "softmax": probs,
        "log_softmax": logp,
        "sum": float(probs.sum()),
        "argmax": int(probs.argmax()),
        "max_probability": float(probs.max()),
        "entropy": float(-(probs * logp).sum()),
    }


def compose(layers: Sequence[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor]:
    """The one affine map of Linear layers applied in order: ``W = W_N ⋯ W_1`` and
    ``b = W_N ⋯ W_2·b_1 + … + W_N·b_{N−1} + b_N`` (zero biases where a layer has none)."""
    w = torch.eye(layers[0].in_features)
    b = torch.zeros(layers[0].in_features)
    with torch.no_grad():
        for layer in layers:
            w = layer.weight @ w
            b = layer.weight @ b + (layer.bias if layer.bias is not None else 0.0)
    return w, b


def fit_affine(x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """The least-squares affine map y ≈ x·Wᵀ + b (``torch.linalg.lstsq`` in float64).

    ``relative_residual`` is ‖residual‖ / ‖y − mean(y)‖: 0 for an exact fit, 1 for a fit no
    better than the mean.
    """
    a = torch.cat([x.double(), torch.ones(x.shape[0], 1, dtype=torch.float64)], dim=1)
    target = y.double()
    sol = torch.linalg.lstsq(a, target).solution  # (in + 1, out)
    resid = a @ sol - target
    spread = (target - target.mean(0)).norm()
    return {
        "weight": sol[:-1].T.float(),
        "bias": sol[-1].float(),
        "samples": int(x.shape[0]),
        "residual_rms": float(resid.pow(2).mean().sqrt()),
        "max_abs_error": float(resid.abs().max()),
        "relative_residual": float(resid.norm() / spread) if spread > 0 else 0.0,
    }


def linear_stack(
    sizes: Sequence[int],
    *,
    bias: bool = True,
    seed: int = 0,
    batch: int = 8,
    samples: int = 512,
    activation: str = "ReLU",
    activation_args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Linear layers of ``sizes`` (``[3, 4, 2]``: 3→4→2) composed into one map, with and
    without ``activation`` between them.

    The layers are ``nn.Linear`` built in order after ``torch.manual_seed(seed)`` (in a forked
    RNG); the inputs are ``randn`` from a generator seeded with ``seed``: ``batch`` rows to
    compare outputs, ``samples`` rows to fit the best affine map by least squares.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 3 or min(sizes) < 1:
        raise SpecError(
            "invalid_arg",
            "sizes needs at least 3 positive sizes (two Linear layers, so that an activation "
            f"can sit between them); got {sizes}",
        )
    if samples < sizes[0] + 1:
        raise SpecError(
            "invalid_arg",
            f"the fit needs at least in_features + 1 = {sizes[0] + 1} samples; got {samples}",
        )
    act, act_args, _ = make_activation(activation, activation_args)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Linear(a, b, bias=bias) for a, b in itertools.pairwise(sizes)]
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sizes[0], generator=g)
    fit_x = torch.randn(samples, sizes[0], generator=g)
    plain = nn.Sequential(*layers)
    between = [m for layer in layers for m in (layer, act)][:-1]
    with_act = nn.Sequential(*between)
    w, b = compose(layers)
    with torch.no_grad():
        composed = x @ w.T + b
        plain_out, act_out = plain(x), with_act(x)
        plain_fit, act_fit = fit_affine(fit_x, plain(fit_x)), fit_affine(fit_x, with_act(fit_x))
    return {
        "sizes": sizes,
        "seed": seed,
        "activation": activation,
        "activation_args": act_args,
        "layers": [{"weight": layer.weight.detach(), "bias": _bias(layer)} for layer in layers],
        "composed": {"weight": w, "bias": b},
        "x": x,
        "composed_output": composed,
        "linear": {
            "output": plain_out,
            "max_abs_diff": float((plain_out - composed).abs().max()),
            "fit": plain_fit,
        },
        "nonlinear": {
            "output": act_out,
            "max_abs_diff": float((act_out - composed).abs().max()),
            "fit": act_fit,
        },
    }


def _bias(layer: nn.Linear) -> torch.Tensor | None:
    return None if layer.bias is None else layer.bias.detach()
