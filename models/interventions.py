"""Interventions declared as data: edit named layers' outputs during a forward pass.

Each :class:`Intervention` names a layer and an op applied to its output along ``dim``
(channels of a conv map, units of a Linear layer), to the chosen ``channels`` (all when
left out):

- ``zero``: set them to 0;
- ``mean``: set each to its mean over its own positions (every dim but the batch and
  ``dim``), for each sample alone; a Linear unit has one position, so this keeps it;
- ``scale``: multiply them by ``factor``;
- ``add``: add ``vector`` (one value per chosen channel);
- ``replace``: set them to ``values`` (a tensor payload shaped like the selection);
- ``patch``: set them to the same layer's output on another input (``source``): a clean
  run and a corrupted run in one request.

:func:`intervened` registers one forward hook per intervention (handles always removed),
exactly what a user would write by hand: ``module.register_forward_hook(edit)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.build import SpecModel
from models.errors import SpecError
from models.inference import Inference
from models.tensors import decode

Op = Literal["zero", "mean", "scale", "add", "replace", "patch"]


class Intervention(BaseModel):
    """One edit of one layer's output."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    layer: str = Field(max_length=64)
    op: Op
    channels: list[int] | None = Field(None, max_length=65_536, description="all when absent")
    dim: int = Field(1, ge=-8, le=7, description="the channel (or unit) dim of the output")
    factor: float = Field(0.0, description="scale: the factor")
    vector: list[float] | None = Field(None, max_length=65_536, description="add: per channel")
    values: Any = Field(None, description="replace: a tensor payload or nested lists")
    source: dict[str, Any] | None = Field(
        None, description="patch: an input maker per input name for the source run"
    )


def _selection(shape: list[int], iv: Intervention) -> tuple[int, list[int]]:
    ndim = len(shape)
    if not -ndim <= iv.dim < ndim:
        raise SpecError(
            "invalid_intervention",
            f"{iv.layer} gives {shape}: dim {iv.dim} is out of range (0..{ndim - 1}).",
            layer=iv.layer,
        )
    dim = iv.dim % ndim
    size = shape[dim]
    channels = list(range(size)) if iv.channels is None else iv.channels
    bad = [c for c in channels if not 0 <= c < size]
    if bad or len(set(channels)) != len(channels):
        raise SpecError(
            "invalid_intervention",
            f"{iv.layer} has {size} channels along dim {dim} (0..{size - 1}); channels "
            f"{bad[:8] or 'repeat'} are not valid.",
            layer=iv.layer,
        )
    return dim, channels


def check(inference: Inference, ivs: list[Intervention]) -> None:
    """Every layer, dim, channel and vector checked against the inferred shapes: no pass yet."""
    shapes = {info.name: info.output_shape for info in inference.layers}
    for iv in ivs:
        if iv.layer not in shapes:
            raise SpecError(
                "unknown_layer",
                f"The model has no layer {iv.layer!r} to intervene on; its layers are "
                f"{', '.join(shapes)}.",
                layer=iv.layer,
            )
        _, channels = _selection(shapes[iv.layer], iv)
        if iv.op == "add" and (iv.vector is None or len(iv.vector) != len(channels)):
            raise SpecError(
                "invalid_intervention",
                f"add on {iv.layer} needs a vector of {len(channels)} values (one per channel).",
                layer=iv.layer,
            )
        if iv.op == "replace" and iv.values is None:
            raise SpecError("invalid_intervention", "replace needs values", layer=iv.layer)
        if iv.op == "patch" and not iv.source:
            raise SpecError("invalid_intervention", "patch needs a source input", layer=iv.layer)


def edit(
    out: torch.Tensor,
    iv: Intervention,
    *,
    values: torch.Tensor | None = None,
    max_elements: int = 4_000_000,
) -> torch.Tensor:
    """The layer's output with the intervention applied (a new tensor)."""
    dim, channels = _selection(list(out.shape), iv)
    idx = torch.tensor(channels, device=out.device)
    sel: list[Any] = [slice(None)] * out.ndim
    sel[dim] = idx
    t = out.clone()
    part = t[tuple(sel)]
    if iv.op == "zero":
        new = torch.zeros_like(part)
    elif iv.op == "mean":
        dims = [d for d in range(out.ndim) if d not in (0, dim)]
        new = part.mean(dim=dims, keepdim=True).expand_as(part) if dims else part
    elif iv.op == "scale":
        new = part * iv.factor
    elif iv.op == "add":
        view = [1] * out.ndim
        view[dim] = len(channels)
        vec = torch.tensor(iv.vector, dtype=out.dtype, device=out.device).reshape(view)
        new = part + vec
    else:
        if iv.op == "replace":
            payload = iv.values if isinstance(iv.values, Mapping) else {"data": iv.values}
            values = decode(payload, max_elements=max_elements)
        assert values is not None
        src = values.to(out.device, out.dtype)
        if iv.op == "patch":
            src = src[tuple(sel)]
        if tuple(src.shape) != tuple(part.shape):
            raise SpecError(
                "invalid_intervention",
                f"{iv.op} on {iv.layer}: the values have shape {list(src.shape)}, the chosen "
                f"channels {list(part.shape)}.",
                layer=iv.layer,
            )
        new = src
    t[tuple(sel)] = new
    return t


@contextmanager
def intervened(
    model: SpecModel,
    ivs: list[Intervention],
    sources: Mapping[int, torch.Tensor] | None = None,
    *,
    max_elements: int = 4_000_000,
) -> Iterator[None]:
    """Forward hooks applying ``ivs`` in order; ``sources[i]`` is intervention i's patch."""
    handles = []

    def hook_for(i: int, iv: Intervention):
        def hook(_module: torch.nn.Module, _args: tuple, output: Any) -> Any:
            value = (sources or {}).get(i)
            if isinstance(output, tuple):  # LSTM & co: edit the tensor passed on
                first = output[0]
                first = edit(first, iv, values=value, max_elements=max_elements)
                return (first, *output[1:])
            return edit(output, iv, values=value, max_elements=max_elements)

        return hook

    try:
        for i, iv in enumerate(ivs):
            handles.append(model.get_submodule(iv.layer).register_forward_hook(hook_for(i, iv)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def patch_sources(
    model: SpecModel, ivs: list[Intervention], source_inputs: Mapping[int, Mapping[str, Any]]
) -> dict[int, torch.Tensor]:
    """The clean run(s): each patch's layer output on its source inputs (no intervention)."""
    from models.catalog import CATALOG

    types = {name: type_name for name, type_name, _ in model.plan}
    out: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for i, xs in source_inputs.items():
            layer = ivs[i].layer
            keep: dict[str, Any] = {layer: None}
            model.run_plan(dict(xs), keep=keep)
            out[i] = CATALOG[types[layer]].split(keep[layer])[0]
    return out
