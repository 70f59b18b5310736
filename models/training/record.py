"""What a learner watches while a model trains: gradient flow, histograms, confusion."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def layer_of(param_name: str) -> str:
    """``conv1.weight`` -> ``conv1``; a parameter of the model itself is its own layer."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def _norm(tensors: Iterable[torch.Tensor]) -> float:
    total = sum(float(t.detach().double().pow(2).sum()) for t in tensors)
    return total**0.5


def grad_flow(
    named: list[tuple[str, nn.Parameter]], before: dict[str, torch.Tensor]
) -> dict[str, dict[str, float | None]]:
    """Per layer: the gradient's norm and the update-to-weight ratio ‖Δw‖ / ‖w‖ of this step.

    ``before`` holds the trainable weights as they were before ``optimizer.step()``.
    """
    layers: dict[str, list[str]] = {}
    for name, _ in named:
        layers.setdefault(layer_of(name), []).append(name)
    params = dict(named)
    out: dict[str, dict[str, float | None]] = {}
    for layer, names in layers.items():
        grads = [params[n].grad for n in names if params[n].grad is not None]
        w0 = _norm(before[n] for n in names)
        dw = _norm(params[n].detach() - before[n] for n in names)
        out[layer] = {
            "grad_norm": finite(_norm(grads)) if grads else None,
            "update_ratio": finite(dw / w0) if w0 > 0 else None,
        }
    return out


def finite(value: float) -> float | None:
    """The value, or None when it is NaN or infinite (JSON has no NaN; a diverged run shows)."""
    return value if value == value and abs(value) != float("inf") else None


def _histogram(t: torch.Tensor, bins: int) -> dict[str, object]:
    t = t.detach().float().flatten()
    t = t[torch.isfinite(t)]
    if t.numel() == 0:
        return {"min": None, "max": None, "counts": [0] * bins}
    lo, hi = float(t.min()), float(t.max())
    if hi == lo:
        hi = lo + 1e-12
    counts = torch.histc(t, bins=bins, min=lo, max=hi)
    return {"min": lo, "max": hi, "counts": [int(c) for c in counts.tolist()]}


def histograms(named: list[tuple[str, nn.Parameter]], bins: int) -> dict[str, dict]:
    """Per trainable parameter: a histogram of its values and one of its gradient."""
    out: dict[str, dict] = {}
    for name, p in named:
        if p.numel() == 0:
            continue
        entry = {"weights": _histogram(p, bins)}
        if p.grad is not None:
            entry["grads"] = _histogram(p.grad, bins)
        out[name] = entry
    return out


def confusion(pred: torch.Tensor, true: torch.Tensor, n: int) -> torch.Tensor:
    """An n×n count matrix: row = true class, column = predicted class."""
    idx = true.flatten().long() * n + pred.flatten().long()
    return torch.bincount(idx, minlength=n * n).reshape(n, n)
