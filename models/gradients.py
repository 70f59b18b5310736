"""Gradients of a run: one scalar (a class score, or a loss against given labels)
differentiated with respect to the float inputs, any captured layer's activation and the
parameters, with ``torch.autograd.grad`` (nothing is accumulated in ``.grad``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from models.attribution import output_index
from models.build import SpecModel
from models.catalog import CATALOG
from models.errors import SpecError


class LossTarget(BaseModel):
    """Differentiate a loss of the output against labels instead of a class score."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cross_entropy", "nll"] = "cross_entropy"
    labels: list[int] = Field(max_length=100_000, description="one class index per output row")


def objective(
    out: torch.Tensor, target: int | None, loss: LossTarget | None
) -> tuple[torch.Tensor, int | None]:
    """The scalar to differentiate: ``out[..., target].sum()`` (target None: the predicted
    class of the first row) or the loss against ``loss.labels``; and the class used."""
    if not out.is_floating_point() or out.numel() == 0:
        raise SpecError(
            "no_gradient",
            f"The output is {'empty' if out.numel() == 0 else 'made of integers'} "
            f"({out.dtype}, shape {list(out.shape)}): it has no gradient. Differentiate a model "
            "whose output is float scores.",
        )
    classes = out.shape[-1] if out.ndim else 1
    rows = out.reshape(-1, classes)
    if loss is not None:
        if len(loss.labels) != rows.shape[0] or any(not 0 <= c < classes for c in loss.labels):
            raise SpecError(
                "invalid_labels",
                f"the loss needs {rows.shape[0]} labels (one per output row), each in "
                f"0..{classes - 1}; got {loss.labels[:8]}.",
            )
        labels = torch.tensor(loss.labels, device=out.device)
        fn = F.cross_entropy if loss.kind == "cross_entropy" else F.nll_loss
        return fn(rows, labels), None
    if target is None:
        target = int(rows[0].argmax())
    if target >= classes:
        raise SpecError(
            "invalid_target",
            f"target {target} is out of range: the output has {classes} classes "
            f"(0..{classes - 1}).",
        )
    return (out[..., target] if out.ndim else out).sum(), target


def gradients(
    model: SpecModel,
    inputs: Mapping[str, torch.Tensor],
    *,
    layers: list[str],
    params: bool = False,
    target: int | None = None,
    loss: LossTarget | None = None,
    output: str | None = None,
) -> dict[str, Any]:
    """d(objective)/d(float inputs, the layers' activations, parameters), by autograd.grad.

    The objective is ``output[..., target].sum()`` (a class score; the predicted class of the
    first row by default) or the loss against ``loss.labels``.
    """
    known = [n for n, _, _ in model.plan]
    for name in layers:
        if name not in known:
            raise SpecError(
                "unknown_layer",
                f"The model has no layer {name!r}; its layers are {', '.join(known)}.",
                layer=name,
            )
    xs = {
        n: (t.detach().clone().requires_grad_() if t.is_floating_point() else t)
        for n, t in inputs.items()
    }
    keep: dict[str, Any] = dict.fromkeys(layers)
    with torch.enable_grad():
        out = model.run_plan(dict(xs), keep=keep)
        out = out[output_index(model, output)] if isinstance(out, tuple) else out
        value, used = objective(out, target, loss)
        acts = {}
        for name, type_name, _ in model.plan:
            if name in keep:
                acts[name] = CATALOG[type_name].split(keep[name])[0]
        float_inputs = {n: t for n, t in xs.items() if t.requires_grad}
        # frozen parameters (requires_grad off) have no gradient: they are left out
        named_params = {n: p for n, p in model.named_parameters() if p.requires_grad and params}
        if not value.requires_grad:
            raise SpecError(
                "no_gradient",
                "The output does not depend on anything that has a gradient (integer inputs "
                "and frozen parameters only); unfreeze a layer or use a float input.",
            )
        acts = {n: a for n, a in acts.items() if a.requires_grad}
        wrt = [*float_inputs.values(), *acts.values(), *named_params.values()]
        grads = torch.autograd.grad(value, wrt, allow_unused=True) if wrt else ()
    it = iter(grads)

    def take(ts: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            n: (g if (g := next(it)) is not None else torch.zeros_like(t)) for n, t in ts.items()
        }

    return {
        "inputs": take(float_inputs),
        "activations": take(acts),
        "parameters": take(named_params),
        "output": out.detach(),
        "objective": float(value.detach()),
        "target": used,
    }
