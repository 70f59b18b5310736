"""Loss functions: the value, every reduction, the gradient, and a curve of the loss.

Each loss is torch's own ``nn`` class, called once per reduction (so class weights and
``batchmean`` weigh exactly as torch does). ``KLDivLoss``'s ``mean`` (which torch warns
about) is the mean of its per-element values, which is what torch computes; ``batchmean``
(the sum over the batch size) is reported beside it. The gradient is d value / d input by
autograd, for the chosen reduction (for ``none``: of the sum of the per-element values).
The curve varies one input element over a range, the others fixed, and gives the loss at
each point.

Targets: MSE, L1, SmoothL1, Huber, BCE, BCEWithLogits and KLDiv take a target of the
input's shape; CrossEntropy takes class indices (the input's shape without the class dim 1,
or a scalar for an unbatched (C,) input) or class probabilities (the input's shape); NLL
takes class indices. Indices are sent as whole numbers and checked against the classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from models.effects import check_cost
from models.errors import SpecError, fmt_shape

Loss = Literal[
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "CrossEntropyLoss",
    "NLLLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
]
LOSSES: tuple[str, ...] = Loss.__args__
Reduction = Literal["mean", "sum", "none", "batchmean"]
CLASSIFIERS = ("CrossEntropyLoss", "NLLLoss")
ARGS = {  # the options each loss takes besides reduction
    "SmoothL1Loss": ("beta",),
    "HuberLoss": ("delta",),
    "CrossEntropyLoss": ("weight", "label_smoothing"),
    "NLLLoss": ("weight",),
    "BCEWithLogitsLoss": ("pos_weight",),
    "KLDivLoss": ("log_target",),
}
DEFAULTS = {
    "beta": 1.0,
    "delta": 1.0,
    "label_smoothing": 0.0,
    "weight": None,
    "pos_weight": None,
    "log_target": False,
}
FORMULAS = {
    "MSELoss": "(x − y)²",
    "L1Loss": "|x − y|",
    "SmoothL1Loss": "0.5·(x − y)²/β if |x − y| < β else |x − y| − 0.5·β",
    "HuberLoss": "0.5·(x − y)² if |x − y| < δ else δ·(|x − y| − 0.5·δ)",
    "CrossEntropyLoss": "−Σ_c y_c·log softmax(x)_c (class index: −log softmax(x)_target)",
    "NLLLoss": "−x_target (x holds log-probabilities)",
    "BCELoss": "−[y·log x + (1 − y)·log(1 − x)] (x holds probabilities)",
    "BCEWithLogitsLoss": "−[p·y·log σ(x) + (1 − y)·log(1 − σ(x))], p = pos_weight",
    "KLDivLoss": "y·(log y − x) (x holds log-probabilities; log_target: e^y·(y − x))",
}


def _bad(message: str, code: str = "invalid_arg", **detail: Any) -> SpecError:
    return SpecError(code, message, detail=detail or None)


def _module(name: str, reduction: str, opts: dict[str, Any]) -> nn.Module:
    return getattr(nn, name)(reduction=reduction, **{k: opts[k] for k in ARGS.get(name, ())})


def _indices(name: str, target: torch.Tensor, classes: int) -> torch.Tensor:
    if target.is_floating_point() and not bool((target == target.round()).all()):
        raise _bad(f"{name} class indices must be whole numbers; the target has fractions")
    idx = target.to(torch.int64)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= classes):
        raise _bad(
            f"{name} class indices must be in 0…{classes - 1} (the input has {classes} classes); "
            f"the target holds {int(idx.min())}…{int(idx.max())}"
        )
    return idx


def prepare_target(name: str, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, str]:
    """Check the target against the input; returns it (int64 indices or float) and its kind:
    ``indices``, ``probabilities`` or ``values``."""
    shape, got = tuple(x.shape), fmt_shape(tuple(target.shape))
    if name in CLASSIFIERS:
        if x.ndim == 0:
            raise _bad(f"{name} needs an input of shape (C,) or (N, C, …); it got a scalar")
        c = shape[0] if x.ndim == 1 else shape[1]
        index_shape = () if x.ndim == 1 else shape[:1] + shape[2:]
        if tuple(target.shape) == index_shape:
            return _indices(name, target, c), "indices"
        if name == "CrossEntropyLoss" and tuple(target.shape) == shape:
            return target.to(torch.float32), "probabilities"
        wants = f"class indices of shape {fmt_shape(index_shape)}"
        if name == "CrossEntropyLoss":
            wants += f" or class probabilities of shape {fmt_shape(shape)}"
        raise _bad(
            f"{name} with an input of shape {fmt_shape(shape)} ({c} classes) needs {wants}; "
            f"the target is {got}",
            "shape_mismatch",
            expected=[list(index_shape)] + ([list(shape)] if name == "CrossEntropyLoss" else []),
            actual=list(target.shape),
        )
    if tuple(target.shape) != shape:
        raise _bad(
            f"{name} needs a target of the input's shape {fmt_shape(shape)}; the target is {got}",
            "shape_mismatch",
            expected=[list(shape)],
            actual=list(target.shape),
        )
    return target.to(torch.float32), "values"


def _range_check(name: str, what: str, t: torch.Tensor) -> None:
    if t.numel() and (float(t.min()) < 0 or float(t.max()) > 1):
        hint = " (for raw scores use BCEWithLogitsLoss)" if what == "input" else ""
        raise _bad(
            f"{name} takes {what} probabilities in [0, 1]; the {what} holds values from "
            f"{float(t.min()):.4g} to {float(t.max()):.4g}{hint}"
        )


def _opts(name: str, x: torch.Tensor, kw: dict[str, Any]) -> dict[str, Any]:
    opts = dict(kw)
    c = (x.shape[0] if x.ndim == 1 else x.shape[1]) if x.ndim else 0
    if opts.get("weight") is not None:
        if name not in CLASSIFIERS:
            raise _bad("class weights apply to CrossEntropyLoss and NLLLoss only")
        if len(opts["weight"]) != c:
            raise _bad(f"weight needs one value per class ({c}); got {len(opts['weight'])}")
        opts["weight"] = torch.tensor(list(opts["weight"]), dtype=torch.float32)
    if opts.get("pos_weight") is not None:
        if name != "BCEWithLogitsLoss":
            raise _bad("pos_weight applies to BCEWithLogitsLoss only")
        last = x.shape[-1] if x.ndim else 1
        if len(opts["pos_weight"]) not in (1, last):
            raise _bad(
                f"pos_weight needs 1 value or one per entry of the input's last dim ({last}); "
                f"got {len(opts['pos_weight'])}"
            )
        opts["pos_weight"] = torch.tensor(list(opts["pos_weight"]), dtype=torch.float32)
    if opts["label_smoothing"] and name != "CrossEntropyLoss":
        raise _bad("label_smoothing applies to CrossEntropyLoss only")
    return opts


def _value(name: str, reduction: str, opts: dict, x: torch.Tensor, target: torch.Tensor):
    if name == "KLDivLoss" and reduction == "mean":
        return _module(name, "none", opts)(x, target).mean()  # what torch's 'mean' computes
    return _module(name, reduction, opts)(x, target)


def loss(
    name: Loss,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: Reduction = "mean",
    beta: float = 1.0,
    delta: float = 1.0,
    label_smoothing: float = 0.0,
    weight: Sequence[float] | None = None,
    pos_weight: Sequence[float] | None = None,
    log_target: bool = False,
    curve_index: Sequence[int] | None = None,
    curve_min: float | None = None,
    curve_max: float | None = None,
    curve_points: int = 101,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """The loss of predictions ``x`` against ``target``, explained.

    Returns ``value`` (for ``reduction``), ``per_element`` (reduction none), ``mean``,
    ``sum`` (and ``batchmean`` for KLDiv), ``grad`` (d value/d x), and ``curve`` (the loss as
    ``x[curve_index]`` goes from ``curve_min`` to ``curve_max``; default: the first element,
    its value ± 3, or [0, 1] for BCE).
    """
    if name not in LOSSES:
        raise _bad(f"loss must be one of {', '.join(LOSSES)}, not {name!r}")
    if reduction == "batchmean" and name != "KLDivLoss":
        raise _bad("reduction 'batchmean' is KLDivLoss's; use mean, sum or none")
    if x.numel() == 0:
        raise _bad("the input is empty; give it at least one value", "input_shape_mismatch")
    x = x.to(torch.float32)
    target, kind = prepare_target(name, x, target)
    if name == "BCELoss":
        _range_check(name, "input", x)
        _range_check(name, "target", target)
    raw = {
        "beta": beta,
        "delta": delta,
        "label_smoothing": label_smoothing,
        "weight": weight,
        "pos_weight": pos_weight,
        "log_target": log_target,
    }
    opts = _opts(name, x, raw)
    check_cost(f"a loss curve of {curve_points} points", curve_points * x.numel(), max_elements)
    leaf = x.clone().requires_grad_(True)
    value = _value(name, reduction, opts, leaf, target)
    (grad,) = torch.autograd.grad(value.sum(), leaf)
    with torch.no_grad():
        per = _value(name, "none", opts, x, target)
        out = {
            "loss": name,
            "torch_call": _torch_call(name, reduction, raw),
            "formula": FORMULAS[name],
            "reduction": reduction,
            "target_kind": kind,
            "input": x,
            "target": target,
            "value": float(value.sum()) if reduction == "none" else float(value),
            "per_element": per,
            "mean": float(_value(name, "mean", opts, x, target)),
            "sum": float(_value(name, "sum", opts, x, target)),
            "batchmean": float(_value(name, "batchmean", opts, x, target))
            if name == "KLDivLoss"
            else None,
            "grad": grad,
            "probabilities": _probabilities(name, x),
        }
        curve = (curve_index, curve_min, curve_max, curve_points)
        out["curve"] = _curve(name, reduction, opts, x, target, *curve)
    return out


def _torch_call(name: str, reduction: str, raw: dict[str, Any]) -> str:
    """``nn.CrossEntropyLoss(label_smoothing=0.1)``: the args that differ from torch's."""
    used = ARGS.get(name, ())
    shown = [f"{k}={_literal(raw[k])}" for k in used if raw[k] != DEFAULTS[k]]
    if reduction != "mean":
        shown.append(f"reduction={reduction!r}")
    return f"nn.{name}({', '.join(shown)})"


def _literal(v: Any) -> str:
    if isinstance(v, list | tuple):
        return f"torch.tensor({[float(e) for e in v]})"
    return repr(v)


def _probabilities(name: str, x: torch.Tensor) -> torch.Tensor | None:
    if name == "CrossEntropyLoss":
        return F.softmax(x, dim=0 if x.ndim == 1 else 1)
    if name == "BCEWithLogitsLoss":
        return torch.sigmoid(x)
    if name in ("NLLLoss", "KLDivLoss"):
        return x.exp()
    return None


def _curve(name, reduction, opts, x, target, index, lo, hi, points) -> dict[str, Any]:
    index = [0] * x.ndim if index is None else [int(i) for i in index]
    if len(index) != x.ndim or any(not 0 <= i < s for i, s in zip(index, x.shape, strict=False)):
        raise _bad(
            f"curve_index must name one element of the input ({fmt_shape(tuple(x.shape))}): "
            f"{x.ndim} indices, each below its size; got {index}"
        )
    at = tuple(index)
    current = float(x[at])
    if lo is None or hi is None:
        lo, hi = (0.0, 1.0) if name == "BCELoss" else (current - 3.0, current + 3.0)
    if not lo < hi:
        raise _bad(f"curve_min ({lo}) must be below curve_max ({hi})")
    if name == "BCELoss" and (lo < 0 or hi > 1):
        raise _bad(
            f"BCELoss takes probabilities, so the curve must stay in [0, 1]; got [{lo}, {hi}]"
        )
    if points < 2:
        raise _bad("curve_points must be at least 2")
    xs = torch.linspace(lo, hi, points)
    values = []
    for v in xs:
        moved = x.clone()
        moved[at] = v
        values.append(_value(name, reduction, opts, moved, target).sum())
    return {"index": index, "current": current, "x": xs, "loss": torch.stack(values)}
