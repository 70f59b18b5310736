"""Normalization: before and after, the statistics used, train vs eval, running statistics.

One experiment: a fresh layer (torch's own class) gets ``steps`` training-mode calls on the
same ``x``; its running mean and var (BatchNorm, and InstanceNorm with
``track_running_stats``) move by torch's update
``running = (1 − momentum)·running + momentum·batch`` (with the unbiased batch variance,
n/(n−1) times the biased one; ``momentum=None`` is the cumulative average). The train-mode
output normalizes with the batch statistics (biased variance); the eval-mode output, taken
after the steps, with the running ones. LayerNorm and GroupNorm keep no running statistics
and behave the same in both modes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from models.effects import check_cost
from models.errors import SpecError, fmt_shape
from models.stats import tensor_stats

Layer = Literal[
    "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d"
]
LAYERS: tuple[str, ...] = (
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
)
RANKS = {
    "BatchNorm1d": ((2, 3), "(N, C) or (N, C, L)"),
    "BatchNorm2d": ((4,), "(N, C, H, W)"),
    "InstanceNorm1d": ((2, 3), "(N, C, L) or (C, L)"),
    "InstanceNorm2d": ((3, 4), "(N, C, H, W) or (C, H, W)"),
    "GroupNorm": ((2, 3, 4, 5, 6), "(N, C, *)"),
    "LayerNorm": ((1, 2, 3, 4, 5, 6), "(*, normalized dims)"),
}
UPDATE = (
    "running = (1 − momentum)·running + momentum·batch, where the batch variance is the "
    "unbiased one (n/(n−1) × the biased variance used to normalize); momentum null: the "
    "cumulative average over the steps"
)


def _bad(message: str, code: str = "invalid_arg") -> SpecError:
    return SpecError(code, message)


def _channel_dim(layer: str, x: torch.Tensor) -> int:
    if layer == "InstanceNorm1d":
        return x.ndim - 2
    if layer == "InstanceNorm2d":
        return x.ndim - 3
    return 1 if x.ndim >= 2 else 0


def _batch_stats(layer: str, x: torch.Tensor, k: int, groups: int) -> dict[str, Any]:
    """The mean and biased variance the layer normalizes with, and over what."""
    if layer.startswith("BatchNorm"):
        flat, over = x.transpose(0, 1).reshape(x.shape[1], -1), "per channel, over N and space"
    elif layer.startswith("InstanceNorm"):
        spatial = 1 if layer == "InstanceNorm1d" else 2
        flat = x.reshape(*x.shape[:-spatial], -1)
        over = "per sample and channel, over space"
    elif layer == "GroupNorm":
        flat, over = x.reshape(x.shape[0], groups, -1), "per sample and group of channels"
    else:
        flat = x.reshape(*x.shape[: x.ndim - k], -1)
        over = f"per position, over the last {k} dim{'s' if k > 1 else ''}"
    return {
        "over": over,
        "count": int(flat.shape[-1]),
        "mean": flat.mean(-1),
        "var": flat.var(-1, correction=0),
    }


def _per_channel(t: torch.Tensor, dim: int) -> dict[str, torch.Tensor]:
    flat = t.transpose(0, dim).reshape(t.shape[dim], -1)
    return {"mean": flat.mean(1), "std": flat.var(1, correction=0).sqrt()}


def _make(layer: str, x: torch.Tensor, opts: dict[str, Any]) -> nn.Module:
    eps, k = opts["eps"], opts["normalized_dims"]
    c = x.shape[_channel_dim(layer, x)]
    if layer == "LayerNorm":
        return nn.LayerNorm(list(x.shape[x.ndim - k :]), eps=eps, elementwise_affine=opts["affine"])
    if layer == "GroupNorm":
        return nn.GroupNorm(opts["num_groups"], c, eps=eps, affine=opts["affine"])
    cls = getattr(nn, layer)
    return cls(
        c,
        eps=eps,
        momentum=opts["momentum"],
        affine=opts["affine"],
        track_running_stats=opts["track_running_stats"],
    )


def _set_affine(module: nn.Module, weight: Sequence[float] | None, bias: Sequence[float] | None):
    for name, values in (("weight", weight), ("bias", bias)):
        if values is None:
            continue
        param = getattr(module, name, None)
        if param is None:
            raise _bad(f"{name} was given but the layer has no affine {name}; set affine to true")
        if len(values) != param.numel():
            raise _bad(
                f"{name} needs {param.numel()} values (shape {fmt_shape(tuple(param.shape))}); "
                f"got {len(values)}",
            )
        with torch.no_grad():
            param.copy_(torch.tensor(list(values), dtype=torch.float32).reshape(param.shape))


def _check(layer: str, x: torch.Tensor, opts: dict[str, Any]) -> None:
    if layer not in LAYERS:
        raise _bad(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    ranks, layout = RANKS[layer]
    if x.ndim not in ranks:
        raise _bad(
            f"{layer} takes {layout}; the input is {fmt_shape(tuple(x.shape))} (rank {x.ndim})",
            "input_shape_mismatch",
        )
    if x.numel() == 0:
        raise _bad("the input is empty; give it at least one value", "input_shape_mismatch")
    if layer == "LayerNorm" and not 1 <= opts["normalized_dims"] <= x.ndim:
        raise _bad(f"normalized_dims must be between 1 and the input's rank {x.ndim}")
    if layer == "GroupNorm":
        c, g = x.shape[1], opts["num_groups"]
        if g < 1 or c % g:
            raise _bad(f"num_groups ({g}) must divide the {c} channels; try 1 or {c}")
    if opts["eps"] <= 0:
        raise _bad("eps must be positive")
    m = opts["momentum"]
    if m is not None and not 0 <= m <= 1:
        raise _bad(f"momentum must be within [0, 1] (or null for the average), not {m}")


def _values_per_stat(layer: str, x: torch.Tensor) -> int:
    if layer.startswith("BatchNorm"):
        return x.numel() // x.shape[1]
    if layer.startswith("InstanceNorm"):
        return math.prod(x.shape[-(1 if layer == "InstanceNorm1d" else 2) :])
    return 2  # LayerNorm and GroupNorm never refuse a single value


def normalize(
    x: torch.Tensor,
    layer: Layer = "BatchNorm1d",
    *,
    mode: Literal["train", "eval"] = "train",
    steps: int = 1,
    eps: float = 1e-5,
    momentum: float | None = 0.1,
    affine: bool | None = None,
    track_running_stats: bool | None = None,
    num_groups: int | None = None,
    normalized_dims: int = 1,
    weight: Sequence[float] | None = None,
    bias: Sequence[float] | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
    bins: int = 20,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """Run ``layer`` on ``x``: ``steps`` training calls, then the train and eval outputs.

    ``affine`` and ``track_running_stats`` left as None take torch's default for the layer
    (BatchNorm: on; InstanceNorm: off). ``num_groups`` (GroupNorm) defaults to 2 when the
    channels are even, else 1. ``weight``/``bias`` overwrite the affine parameters (one value
    per channel, or per normalized element for LayerNorm). The layer sees
    ``x·scale + offset`` (the tutorial's ``rand(1, 4, 4)·20 + 5``), returned as ``input``.
    ``output`` is the ``mode`` output; ``before_stats``/``after_stats`` are
    :func:`models.tensors.tensor_stats` of input and output with ``bins`` histogram bins.
    """
    x = x.to(torch.float32) * scale + offset
    inst = layer.startswith("InstanceNorm")
    opts = {
        "eps": eps,
        "momentum": momentum,
        "affine": (not inst) if affine is None else affine,
        "track_running_stats": (not inst) if track_running_stats is None else track_running_stats,
        "num_groups": num_groups or (2 if x.ndim >= 2 and x.shape[1] % 2 == 0 else 1),
        "normalized_dims": normalized_dims,
    }
    _check(layer, x, opts)
    if steps < 0:
        raise _bad("steps must be 0 or more")
    check_cost(f"{steps + 2} calls of {layer}", (steps + 2) * x.numel(), max_elements)
    n = _values_per_stat(layer, x)
    trainable = n > 1
    if not trainable and (mode == "train" or steps > 0):
        raise _bad(
            f"{layer} in training mode needs more than one value per statistic; this input "
            f"({fmt_shape(tuple(x.shape))}) gives {n}. Use a larger batch (or more positions), "
            "or eval mode with 0 steps.",
            "input_shape_mismatch",
        )
    module = _make(layer, x, opts)
    _set_affine(module, weight, bias)
    tracked = getattr(module, "running_mean", None) is not None
    history_mean, history_var = [], []
    with torch.no_grad():
        train_out = copy.deepcopy(module).train()(x) if trainable else None
        module.train()
        for step in range(steps + 1):
            if tracked:
                history_mean.append(module.running_mean.clone())
                history_var.append(module.running_var.clone())
            if step < steps:
                module(x)
        eval_out = module.eval()(x)
    out = train_out if mode == "train" else eval_out
    c_dim = _channel_dim(layer, x)
    running = None
    if tracked:
        running = {
            "momentum": momentum,
            "steps": steps,
            "num_batches_tracked": int(module.num_batches_tracked),
            "mean": module.running_mean.clone(),
            "var": module.running_var.clone(),
            "history_mean": torch.stack(history_mean),
            "history_var": torch.stack(history_var),
            "update": UPDATE,
        }
    return {
        "layer": layer,
        "torch_call": _torch_call(layer, module),
        "mode": mode,
        "input": x,
        "output": out,
        "train_output": train_out,
        "eval_output": eval_out,
        "channel_dim": c_dim,
        "channels_before": _per_channel(x, c_dim),
        "channels_after": _per_channel(out, c_dim),
        "batch_stats": _batch_stats(layer, x, normalized_dims, opts["num_groups"]),
        "running": running,
        "weight": _param(module, "weight"),
        "bias": _param(module, "bias"),
        "eps": eps,
        "before_stats": tensor_stats(x, bins=bins),
        "after_stats": tensor_stats(out, bins=bins),
    }


def _param(module: nn.Module, name: str) -> torch.Tensor | None:
    p = getattr(module, name, None)
    return None if p is None else p.detach().clone()


def _torch_call(layer: str, module: nn.Module) -> str:
    rep = module.extra_repr()
    return f"nn.{layer}({rep})"
