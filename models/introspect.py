"""A built model as PyTorch sees it: the module tree, the parameter table, the summary.

Everything here reads the live ``nn.Module``: ``module_tree`` is ``print(model)``, the
parameter table walks ``model.named_parameters()`` (so a shared parameter is listed once,
as torch does), and the totals are ``sum(p.numel() for p in model.parameters())``.
:func:`summary` joins the per-layer costs measured on the meta device (``models.build``)
with what the real model holds now (which parameters are frozen).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from models.build import Inference
from models.errors import SpecError
from models.stats import tensor_stats_many

_LISTED = 12  # how many names an "unknown name" message lists


def module_tree(model: nn.Module) -> str:
    """``print(model)``: the tree of modules, in the spec's names and order."""
    return str(model)


def layer_text(model: nn.Module, name: str) -> str:
    """``print(model.<name>)`` for one layer or any submodule path (``encoder.layers.0``)."""
    return str(_submodule(model, name))


def _layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_children()]


def _few(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" … ({len(names)} in all)" if len(names) > _LISTED else "")


def _submodule(model: nn.Module, name: str) -> nn.Module:
    try:
        if not name:
            raise AttributeError(name)
        return model.get_submodule(name)
    except AttributeError:
        raise SpecError(
            "unknown_layer",
            f"The model has no layer '{name}'. Its layers are: {_few(_layer_names(model))}.",
            layer=name or None,
            detail={"layers": _layer_names(model)},
        ) from None


def _parameter(model: nn.Module, name: str) -> nn.Parameter:
    try:
        if not name:
            raise AttributeError(name)
        return model.get_parameter(name)
    except AttributeError:
        names = [n for n, _ in model.named_parameters()]
        raise SpecError(
            "unknown_parameter",
            f"The model has no parameter '{name}'. Its parameters include: {_few(names)}.",
            detail={"parameters": names[:_LISTED]},
        ) from None


# -- the parameter table --------------------------------------------------------------------
def _param_stats(params: list[torch.Tensor]) -> list[tuple[float | None, ...]]:
    """(mean, population std, min, max) of each tensor: ``models.stats``'s numbers (over the
    finite values; ``None`` for an empty parameter), without the histograms."""
    with torch.no_grad():
        rows = tensor_stats_many(params, histogram=False)
    return [(r["mean"], r["std"], r["min"], r["max"]) for r in rows]


def parameter_table(model: nn.Module) -> dict[str, Any]:
    """One row per ``model.named_parameters()`` entry, the totals, and the buffers.

    A row: name (``conv1.weight``), module (``conv1``), layer (the top-level spec layer,
    ``encoder`` for ``encoder.layers.0.linear1.weight``), shape, count, dtype, device,
    requires_grad, and the values' mean, std (population), min and max.
    """
    named = list(model.named_parameters())
    stats = _param_stats([p for _, p in named])
    rows = []
    for (name, p), (mean, std, lo, hi) in zip(named, stats, strict=True):
        rows.append(
            {
                "name": name,
                "module": name.rpartition(".")[0],
                "layer": name.split(".", 1)[0],
                "shape": list(p.shape),
                "count": p.numel(),
                "dtype": str(p.dtype).removeprefix("torch."),
                "device": str(p.device),
                "requires_grad": p.requires_grad,
                "mean": mean,
                "std": std,
                "min": lo,
                "max": hi,
            }
        )
    trainable = sum(p.numel() for _, p in named if p.requires_grad)
    count = sum(p.numel() for _, p in named)
    buffers = [
        {
            "name": name,
            "layer": name.split(".", 1)[0],
            "shape": list(b.shape),
            "count": b.numel(),
            "dtype": str(b.dtype).removeprefix("torch."),
        }
        for name, b in model.named_buffers()
    ]
    return {
        "rows": rows,
        "totals": {
            "count": count,
            "trainable": trainable,
            "frozen": count - trainable,
            "bytes": sum(p.numel() * p.element_size() for _, p in named),
            "tensors": len(named),
        },
        "buffers": buffers,
    }


def parameter_values(model: nn.Module, name: str) -> torch.Tensor:
    """The values of one parameter (``fc1.weight``), detached from autograd."""
    return _parameter(model, name).detach()


def set_requires_grad(model: nn.Module, target: str, flag: bool) -> list[str]:
    """Freeze (``flag=False``) or unfreeze a parameter or every parameter of a layer.

    ``target`` is a parameter name (``fc1.weight``) or a module path (``fc1``,
    ``encoder.layers.0``). Returns the names (as ``named_parameters`` spells them) of the
    parameters whose ``requires_grad`` actually changed.
    """
    canonical = {id(p): n for n, p in model.named_parameters()}
    try:
        params = [_parameter(model, target)]
    except SpecError:
        try:
            module = _submodule(model, target)
        except SpecError:
            raise SpecError(
                "unknown_layer",
                f"'{target}' names neither a layer nor a parameter of the model. Its layers "
                f"are: {_few(_layer_names(model))}; a parameter is named like "
                f"{next(iter(canonical.values()), 'fc1.weight')}.",
                layer=target or None,
                detail={"layers": _layer_names(model)},
            ) from None
        params = list(module.parameters())
    changed = []
    for p in params:
        if p.requires_grad != flag:
            p.requires_grad_(flag)
            changed.append(canonical[id(p)])
    return changed


# -- the summary ----------------------------------------------------------------------------
def summary(model: nn.Module, inference: Inference) -> list[dict[str, Any]]:
    """One row per spec layer: output shape, extras, params, trainable params, memory, FLOPs.

    Shapes, activation bytes and FLOPs come from the inference on the meta device; the
    parameter counts come from the real model (so frozen parameters show as not trainable).
    """
    rows = []
    for info in inference.layers:
        module = model._modules.get(info.name)
        if module is None:
            raise ValueError(f"the model has no layer {info.name}: it was built from another spec")
        params = list(module.parameters())
        rows.append(
            {
                "name": info.name,
                "type": info.type,
                "output_shape": list(info.output_shape),
                "extras": {k: list(v) for k, v in info.extras.items()},
                "params": sum(p.numel() for p in params),
                "trainable": sum(p.numel() for p in params if p.requires_grad),
                "activation_bytes": info.activation_bytes,
                "flops": info.flops,
                "work": info.work,
            }
        )
    return rows
