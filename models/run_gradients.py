"""Gradients as part of a run: the probe's own forward, then one backward.

A run that asks for gradients (:class:`RunGradients`) is probed with autograd on: the float
inputs become leaves, every captured layer's output keeps its graph, and after the forward
:func:`backward` differentiates one scalar (a class score, the predicted class by default,
or a loss against labels: ``models.gradients.objective``) with a single
``torch.autograd.grad`` with respect to the inputs and every captured layer's output (the
tensor the layer passes on). Nothing is accumulated in ``.grad``.

:func:`describe_gradients` adds each gradient next to its activation in a described run, in
the same encoding and with the same statistics (``models.tensors.encode``,
``models.stats.tensor_stats_many``). :func:`check_cost` counts the backward as a second
pass through ``models.attribution.check_cost``, and the gradients as a second copy of the
activations, before anything is spent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.attribution import AttributionLimits, output_index
from models.attribution import check_cost as _check_passes
from models.build import SpecModel
from models.catalog import CATALOG
from models.errors import SpecError
from models.gradients import LossTarget, objective
from models.limits import DEFAULT_LIMITS
from models.stats import tensor_stats_many
from models.tensors import Encoding, encode

PASSES = 2  # the forward, and a backward of about the same cost


class RunGradients(BaseModel):
    """What a run differentiates: a class score (an index, or the predicted class of the first
    row), or a loss against labels; on which output (default: the first)."""

    model_config = ConfigDict(extra="forbid")

    target: Annotated[int, Field(ge=0, le=1_000_000)] | Literal["predicted"] = Field(
        "predicted", description="class index on the output's last dim, or 'predicted'"
    )
    loss: LossTarget | None = Field(None, description="differentiate this loss instead")
    output: str | None = Field(None, max_length=64, description="the output (default: first)")


@dataclass
class GradientResult:
    """d(objective)/d(each float input) and d(objective)/d(each captured layer's output)."""

    inputs: dict[str, torch.Tensor]
    layers: dict[str, torch.Tensor]
    target: int | None
    objective: float


def check_cost(flops: int, activation_bytes: int, limits: AttributionLimits) -> None:
    """413 when a forward and a backward (two passes × the forward FLOPs) are over the limits,
    or when the activations and their gradients (twice the forward's) do not fit."""
    hint = "Leave out gradients or use a smaller input. "
    _check_passes(PASSES, flops, limits, "A run with gradients: forward and backward passes", hint)
    DEFAULT_LIMITS.check(
        "A run with gradients: activation memory (the activations and their gradients)",
        PASSES * activation_bytes,
        limits.max_activation_bytes,
        "max_activation_bytes",
        hint=hint,
    )


def leaf_inputs(xs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The float inputs as fresh leaves that require grad (token ids stay as they are)."""
    return {
        n: t.detach().clone().requires_grad_() if t.is_floating_point() else t
        for n, t in xs.items()
    }


def backward(
    model: SpecModel,
    xs: Mapping[str, torch.Tensor],
    out: Any,
    kept: Mapping[str, Any],
    opts: RunGradients,
) -> GradientResult:
    """One ``autograd.grad`` of the objective on ``out`` (the model's output) with respect to
    the leaf inputs ``xs`` and the main tensor of each raw layer output in ``kept``.

    A tensor the objective does not depend on gets zeros (a layer after the chosen output);
    one without a graph (token ids, a frozen embedding's output) is left out. An objective
    with no graph at all is a 422 (``no_gradient``).
    """
    index = output_index(model, opts.output)
    chosen = out[index] if isinstance(out, tuple) else out
    target = None if opts.target == "predicted" else opts.target
    value, used = objective(chosen, target, opts.loss)
    types = {name: type_name for name, type_name, _ in model.plan}
    inputs = {n: t for n, t in xs.items() if t.requires_grad}
    layers = {}
    for name, raw in kept.items():
        main = CATALOG[types[name]].split(raw)[0]
        if isinstance(main, torch.Tensor) and main.requires_grad:
            layers[name] = main
    if not value.requires_grad:
        raise SpecError(
            "no_gradient",
            "The output does not depend on anything that has a gradient (integer inputs and "
            "frozen parameters only); unfreeze a layer or use a float input.",
        )
    it = iter(torch.autograd.grad(value, [*inputs.values(), *layers.values()], allow_unused=True))

    def take(ts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {n: g if (g := next(it)) is not None else torch.zeros_like(t) for n, t in ts.items()}

    return GradientResult(take(inputs), take(layers), used, float(value.detach()))


def describe_gradients(
    described: dict[str, Any],
    grads: GradientResult,
    *,
    encoding: Encoding = "f16",
    max_elements: int | None = None,
    bins: int = 30,
    stats: bool = True,
) -> None:
    """Add ``"gradient": {"tensor", "stats"}`` next to each layer's activation (and each float
    input) of a described run, and ``"gradients": {"target", "objective"}`` to it."""
    places = [
        *((described["activations"][n], t) for n, t in grads.layers.items()),
        *((described["inputs"][n], t) for n, t in grads.inputs.items() if n in described["inputs"]),
    ]
    summaries = tensor_stats_many([t for _, t in places], bins=bins) if stats else None
    for i, (entry, t) in enumerate(places):
        entry["gradient"] = {"tensor": encode(t, encoding, max_elements)}
        if summaries is not None:
            entry["gradient"]["stats"] = summaries[i]
    described["gradients"] = {"target": grads.target, "objective": grads.objective}


__all__ = [
    "GradientResult",
    "RunGradients",
    "backward",
    "check_cost",
    "describe_gradients",
    "leaf_inputs",
]
