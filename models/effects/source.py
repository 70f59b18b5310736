"""Where an experiment's input comes from: seeded random values, a constant, given values,
or the activation of a layer of one of a workspace's models.

The sources are pydantic models tagged by ``kind`` (the server reuses them as request
schemas), built on the input makers of :mod:`models.inputs`: ``random`` and ``constant``
add the ``shape`` to make, ``tensor`` is :class:`models.inputs.TensorInput` itself, and
``model`` names a model, one of its layers and the makers of the model's inputs.

Effects run on the CPU in float32; :func:`model_activation` moves a layer's output there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.build import Built, infer
from models.errors import LimitError, SpecError, fmt_shape
from models.inputs import (
    DEFAULT_MAKER,
    ConstantInput,
    InputMaker,
    RandomInput,
    TensorInput,
    make_input,
)
from models.limits import Limits
from models.probe import probe

Shape = Annotated[
    list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(min_length=1, max_length=6)
]


class RandomSource(RandomInput):
    """Seeded random values of ``shape``: ``uniform`` draws ``torch.rand`` scaled to
    [low, high), ``normal`` draws ``torch.randn`` scaled by std and shifted by mean, from a
    generator seeded with ``seed`` (the numbers of ``torch.manual_seed(seed)`` in plain torch).
    """

    shape: Shape


class ConstantSource(ConstantInput):
    """Every element of ``shape`` set to ``value``."""

    shape: Shape


class ModelSource(BaseModel):
    """The output of ``layer`` of the workspace's model ``model_id``, run on ``inputs``.

    Inputs not given are seeded random normal (seed 0) of the declared shape. A train-mode
    run (dropout on, batch statistics) leaves the model as it was: its buffers are restored.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["model"] = "model"
    model_id: str = Field(min_length=1, max_length=64)
    layer: str = Field(min_length=1, max_length=128)
    inputs: Annotated[dict[str, InputMaker], Field(max_length=8)] = {}
    mode: Literal["eval", "train"] = "eval"
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="seeds dropout in train mode")


TensorSource = TensorInput
AnySource = RandomSource | ConstantSource | TensorInput | ModelSource
Source = Annotated[AnySource, Field(discriminator="kind")]


def make_tensor(source: AnySource, *, max_elements: int) -> torch.Tensor:
    """The float32 CPU tensor of a random, constant or given source (sizes checked first)."""
    if isinstance(source, ModelSource):
        raise SpecError(
            "invalid_input", "a model source needs the model: resolve it with model_activation"
        )
    shape = getattr(source, "shape", None) if not isinstance(source, TensorInput) else None
    made = make_input(source, shape, "float32", max_elements=max_elements)
    return made.tensor.to(torch.float32)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: b.detach().clone() for name, b in model.named_buffers()}


def _restore(model: torch.nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for name, b in model.named_buffers():
            b.copy_(saved[name])


def model_activation(
    built: Built, source: ModelSource, *, limits: Limits, max_pixels: int = 16_000_000
) -> torch.Tensor:
    """Run ``source.inputs`` through ``built.model`` and return ``source.layer``'s output.

    The inputs are made as ``POST /api/models/{id}/run`` makes them (checked against the
    limits before anything is allocated); the layer's main tensor comes back as float32 on
    the CPU. An unknown layer is ``SpecError('unknown_layer')``.
    """
    spec = built.inference.spec
    unknown = [n for n in source.inputs if n not in spec.inputs]
    if unknown:
        raise SpecError(
            "invalid_input",
            f"The model has no input {', '.join(unknown)}; its inputs are "
            f"{', '.join(spec.inputs)}.",
        )
    made = {
        name: make_input(
            source.inputs.get(name) or DEFAULT_MAKER,
            inp.shape,
            inp.dtype,
            vocab=inp.vocab,
            max_elements=limits.max_input_elements,
            max_pixels=max_pixels,
            name=name,
        ).tensor
        for name, inp in spec.inputs.items()
    }
    shapes = {n: list(t.shape) for n, t in made.items()}
    if shapes != built.inference.input_shapes:
        infer(spec, input_shapes=shapes, limits=limits)  # other shapes: check the cost first
    saved = _snapshot(built.model) if source.mode == "train" else None
    try:
        result = probe(
            built.model, made, mode=source.mode, capture=[source.layer], seed=source.seed
        )
    finally:
        if saved is not None:
            _restore(built.model, saved)
    out = result.activations[source.layer].tensor.detach()
    if out.numel() > limits.max_input_elements:
        raise LimitError(
            f"{source.layer} gives {fmt_shape(tuple(out.shape))} = {out.numel():,} values; "
            f"an experiment takes at most {limits.max_input_elements:,}. Pick an earlier or "
            "smaller layer.",
            layer=source.layer,
        )
    return out.to("cpu", torch.float32)


def resolve(
    source: AnySource,
    *,
    built: Built | None = None,
    limits: Limits,
    max_pixels: int = 16_000_000,
) -> torch.Tensor:
    """The tensor of any source; a model source needs its ``built`` model."""
    if isinstance(source, ModelSource):
        if built is None:
            raise SpecError("invalid_input", "a model source needs the model it names")
        return model_activation(built, source, limits=limits, max_pixels=max_pixels)
    return make_tensor(source, max_elements=limits.max_input_elements)
