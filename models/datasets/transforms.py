"""Transforms declared in a training request, not hand-coded: scale, normalize, pad, flatten.

Each works on a batch (B, *sample) and is the same torch expression the exported script
writes, so a plain loop reproduces it bit for bit:

- ``scale``: ``x / hi`` (or ``(x - lo) / (hi - lo)``) with the dataset's stored value range,
  e.g. ``x / 255.0`` for Fashion-MNIST, ``x / 16.0`` for digits: values in [0, 1].
- ``normalize``: ``(x - mean) / std``.
- ``pad``: zeros around the last two dimensions up to ``size``×``size`` (28×28 → 32×32).
- ``flatten``: one vector per sample, ``x.flatten(1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from models.errors import SpecError, fmt_shape


class _T(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Scale(_T):
    """Values to [0, 1] using the dataset's stored range (0–255, 0–16)."""

    kind: Literal["scale"] = "scale"


class Normalize(_T):
    """(x − mean) / std."""

    kind: Literal["normalize"] = "normalize"
    mean: float = Field(0.0, ge=-1e6, le=1e6)
    std: float = Field(1.0, gt=0, le=1e6)


class Pad(_T):
    """Zeros around the last two dimensions up to size×size."""

    kind: Literal["pad"] = "pad"
    size: int = Field(32, ge=1, le=512)


class Flatten(_T):
    """One vector per sample."""

    kind: Literal["flatten"] = "flatten"


Transform = Annotated[Scale | Normalize | Pad | Flatten, Field(discriminator="kind")]


def _pad_amounts(shape: Sequence[int], size: int) -> tuple[int, int, int, int]:
    if len(shape) < 2:
        raise SpecError(
            "invalid_transform",
            f"pad works on images (…×H×W); the samples are {fmt_shape(shape)}",
            detail={"field": "transforms"},
        )
    h, w = shape[-2], shape[-1]
    if h > size or w > size:
        raise SpecError(
            "invalid_transform",
            f"pad to {size} cannot shrink {h}×{w} samples; choose a size of at least {max(h, w)}",
            detail={"field": "transforms"},
        )
    top, left = (size - h) // 2, (size - w) // 2
    return left, size - w - left, top, size - h - top


def transformed_shape(
    sample_shape: Sequence[int], transforms: Sequence[BaseModel]
) -> tuple[int, ...]:
    """The shape of one sample after the transforms, worked out without touching data."""
    shape = tuple(int(d) for d in sample_shape)
    for t in transforms:
        if isinstance(t, Pad):
            left, right, top, bottom = _pad_amounts(shape, t.size)
            shape = (*shape[:-2], shape[-2] + top + bottom, shape[-1] + left + right)
        elif isinstance(t, Flatten):
            if any(d < 0 for d in shape):
                raise SpecError(
                    "invalid_transform",
                    "flatten needs samples of a fixed size; these have a variable length",
                    detail={"field": "transforms"},
                )
            n = 1
            for d in shape:
                n *= d
            shape = (n,)
    return shape


def apply_transforms(
    x: torch.Tensor,
    transforms: Sequence[BaseModel],
    *,
    value_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Apply the transforms to a batch ``x`` (B, *sample), in order.

    ``value_range`` is the dataset's stored range, which ``scale`` needs.
    """
    for t in transforms:
        if isinstance(t, Scale):
            if value_range is None:
                raise SpecError(
                    "invalid_transform",
                    "scale needs a dataset with a known value range (an image set); "
                    "use normalize instead",
                    detail={"field": "transforms"},
                )
            lo, hi = value_range
            x = x / float(hi) if lo == 0 else (x - float(lo)) / float(hi - lo)
        elif isinstance(t, Normalize):
            x = (x - t.mean) / t.std
        elif isinstance(t, Pad):
            x = F.pad(x, _pad_amounts(tuple(x.shape), t.size))
        elif isinstance(t, Flatten):
            x = x.flatten(1)
    return x


def transform_source(
    transforms: Sequence[BaseModel],
    sample_shape: Sequence[int],
    value_range: tuple[float, float] | None,
    var: str = "x",
) -> list[str]:
    """The same transforms as lines of plain torch (for the exported training script)."""
    lines = []
    shape = tuple(int(d) for d in sample_shape)
    for t in transforms:
        if isinstance(t, Scale) and value_range is not None:
            lo, hi = value_range
            expr = (
                f"{var} / {float(hi)!r}"
                if lo == 0
                else f"({var} - {float(lo)!r}) / {float(hi - lo)!r}"
            )
            lines.append(f"{var} = {expr}  # scale to [0, 1]")
        elif isinstance(t, Normalize):
            lines.append(f"{var} = ({var} - {t.mean!r}) / {t.std!r}  # normalize")
        elif isinstance(t, Pad):
            lines.append(f"{var} = F.pad({var}, {_pad_amounts(shape, t.size)})  # pad to {t.size}")
        elif isinstance(t, Flatten):
            lines.append(f"{var} = {var}.flatten(1)  # flatten")
        shape = transformed_shape(shape, [t])
    return lines
