"""Feature visualization: optimize an input from seeded noise to excite a channel or a class.

The loop is the textbook one, written as a tutorial would (Adam on the input; each step a
random jitter by ``torch.roll``, the forward, ``-objective + l2·mean(x²) + tv·TV(x)``, the
gradient by ``torch.autograd.grad`` so the model's ``.grad`` stays untouched, ``step``). One
``torch.Generator`` seeded with ``seed`` draws the start and the jitters. The cost (steps ×
forward FLOPs) is checked before the first step; a time budget stops it early.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.attribution import (
    DEFAULT_ATTRIBUTION_LIMITS,
    AttributionLimits,
    check_cost,
    check_layer,
)
from models.build import SpecModel
from models.catalog import CATALOG
from models.errors import SpecError
from models.inference import Inference


class FeatVisOptions(BaseModel):
    """What to maximize (a layer's channel, or an output class) and how."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    layer: str | None = Field(None, max_length=64, description="absent: the output's class")
    channel: int = Field(0, ge=0, le=1_000_000, description="channel (or unit, or class)")
    input: str | None = Field(None, max_length=64, description="the float input to optimize")
    steps: int = Field(64, ge=1, le=1_000_000)
    lr: float = Field(0.05, gt=0, le=10)
    l2: float = Field(1e-3, ge=0, le=1e3)
    tv: float = Field(1e-2, ge=0, le=1e3)
    jitter: int = Field(1, ge=0, le=16, description="random shift in pixels per step")
    seed: int = Field(0, ge=0, le=2**63 - 1)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of neighbours along the last two dims."""
    dh = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    dw = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    return dh + dw


def visualize(
    model: SpecModel,
    inference: Inference,
    opts: FeatVisOptions,
    limits: AttributionLimits = DEFAULT_ATTRIBUTION_LIMITS,
    *,
    max_seconds: float = 10.0,
) -> dict[str, Any]:
    """The optimized input, the objective per step, and the steps actually made."""
    name = opts.input or model.input_names[0]
    spec_inputs = inference.input_shapes
    if name not in spec_inputs or inference.spec.inputs[name].dtype not in ("float32", "float"):
        raise SpecError(
            "featvis_needs_float_input",
            f"Feature visualization optimizes a float input; {name!r} is not one of the "
            "model's float inputs.",
        )
    if len(spec_inputs) != 1:
        raise SpecError("featvis_one_input", "Feature visualization needs a one-input model.")
    shape = spec_inputs[name]
    if opts.layer is not None:
        layer_shape = check_layer(inference, opts.layer, "feature visualization")
        size = layer_shape[1] if len(layer_shape) > 1 else layer_shape[0]
    else:
        size = next(iter(inference.outputs.values()))[-1]
    if opts.channel >= size:
        raise SpecError(
            "invalid_channel",
            f"channel {opts.channel} is out of range: there are {size} (0..{size - 1}).",
            layer=opts.layer,
        )
    hint = "Use fewer steps. "
    check_cost(
        opts.steps,
        2 * inference.total_flops,
        limits,
        f"Feature visualization with {opts.steps} steps: the passes",
        hint,
    )
    types = {n: t for n, t, _ in model.plan}
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(opts.seed)
    x = (torch.randn(shape, generator=gen) * 0.1).to(device).requires_grad_()
    opt = torch.optim.Adam([x], lr=opts.lr)
    history: list[float] = []
    image = len(shape) >= 3  # (…, H, W): jitter and total variation apply to images only
    started = time.perf_counter()
    for _ in range(opts.steps):
        if time.perf_counter() - started > max_seconds:
            break
        shift = torch.randint(-opts.jitter, opts.jitter + 1, (2,), generator=gen).tolist()
        with torch.enable_grad():
            xs = torch.roll(x, shifts=shift, dims=(-2, -1)) if image else x
            obj = objective(model, types, {name: xs}, opts)
            loss = -obj + opts.l2 * x.pow(2).mean()
            if image:
                loss = loss + opts.tv * total_variation(x)
            (grad,) = torch.autograd.grad(loss, [x])
        opt.zero_grad()
        x.grad = grad
        opt.step()
        history.append(float(obj.detach()))
    return {"input": x.detach(), "objective": history, "steps": len(history)}


def objective(
    model: SpecModel, types: dict[str, str], xs: Mapping[str, torch.Tensor], opts: FeatVisOptions
) -> torch.Tensor:
    """The mean of the chosen channel of the layer (or the class score of the output)."""
    keep: dict[str, Any] = {opts.layer: None} if opts.layer else {}
    out = model.run_plan(dict(xs), keep=keep)
    if opts.layer is None:
        out = out[0] if isinstance(out, tuple) else out
        return out[..., opts.channel].mean()
    act = CATALOG[types[opts.layer]].split(keep[opts.layer])[0]
    return act[:, opts.channel].mean() if act.ndim > 1 else act[opts.channel]
