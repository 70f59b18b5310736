"""TensorFlow Playground's 2-D data sets, seeded: circle, xor, gauss, spiral and plane.

The formulas are TF Playground's (``dataset.ts``), drawn with a private ``torch.Generator``
so a set depends only on its parameters. Labels +1 / -1 there are classes 1 ("blue") and
0 ("orange") here; ``plane`` is the regression set, its target (x + y) / 10 in [-1.2, 1.2].
Train and test are drawn together (``n_train + n_test`` points) and split after a seeded
shuffle, as TF Playground splits one set by its ratio.
"""

from __future__ import annotations

import math

import torch
from pydantic import BaseModel, ConfigDict, Field

from models.errors import SpecError


class ToyParams(BaseModel):
    """How many points, how noisy, which seed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_train: int = Field(250, ge=2, le=10_000, description="training points")
    n_test: int = Field(250, ge=2, le=10_000, description="test points")
    noise: float = Field(0.0, ge=0.0, le=0.5, description="TF Playground's noise (0–0.5)")
    seed: int = Field(0, ge=0, lt=2**63)


def _uniform(g: torch.Generator, n: int, low: float, high: float) -> torch.Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64) * (high - low) + low


def _circle(g: torch.Generator, n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    radius = 5.0
    half = n // 2
    r = torch.cat([_uniform(g, half, 0, radius * 0.5), _uniform(g, n - half, radius * 0.7, radius)])
    angle = _uniform(g, n, 0, 2 * math.pi)
    x, y = r * torch.sin(angle), r * torch.cos(angle)
    nx, ny = _uniform(g, n, -radius, radius) * noise, _uniform(g, n, -radius, radius) * noise
    label = (torch.hypot(x + nx, y + ny) < radius * 0.5).long()
    return torch.stack([x, y], 1), label


def _xor(g: torch.Generator, n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    pad = 0.3
    x, y = _uniform(g, n, -5, 5), _uniform(g, n, -5, 5)
    x, y = x + torch.where(x > 0, pad, -pad), y + torch.where(y > 0, pad, -pad)
    nx, ny = _uniform(g, n, -5, 5) * noise, _uniform(g, n, -5, 5) * noise
    label = ((x + nx) * (y + ny) >= 0).long()
    return torch.stack([x, y], 1), label


def _gauss(g: torch.Generator, n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    std = math.sqrt(0.5 + 7.0 * noise)  # TF Playground: variance from 0.5 (noise 0) to 4 (0.5)
    half = n // 2
    centre = torch.cat([torch.full((half,), 2.0), torch.full((n - half,), -2.0)]).double()
    pts = torch.randn(n, 2, generator=g, dtype=torch.float64) * std + centre[:, None]
    label = torch.cat([torch.ones(half), torch.zeros(n - half)]).long()
    return pts, label


def _spiral(g: torch.Generator, n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    half = n // 2
    parts, labels = [], []
    for count, delta, cls in ((half, 0.0, 1), (n - half, math.pi, 0)):
        i = torch.arange(count, dtype=torch.float64)
        r = i / count * 5
        t = 1.75 * i / count * 2 * math.pi + delta
        x = r * torch.sin(t) + _uniform(g, count, -1, 1) * noise
        y = r * torch.cos(t) + _uniform(g, count, -1, 1) * noise
        parts.append(torch.stack([x, y], 1))
        labels.append(torch.full((count,), cls))
    return torch.cat(parts), torch.cat(labels).long()


def _plane(g: torch.Generator, n: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    radius = 6.0
    x, y = _uniform(g, n, -radius, radius), _uniform(g, n, -radius, radius)
    nx, ny = _uniform(g, n, -radius, radius) * noise, _uniform(g, n, -radius, radius) * noise
    target = ((x + nx) + (y + ny)) / 10
    return torch.stack([x, y], 1), target[:, None]


MAKERS = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral, "plane": _plane}


def make_toy(name: str, split: str, params: ToyParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Points (N, 2) float32 and labels (N,) int64 (``plane``: targets (N, 1) float32)."""
    if name not in MAKERS:
        raise SpecError("unknown_dataset", f"{name!r} is not a 2-D toy set")
    g = torch.Generator().manual_seed(params.seed)
    total = params.n_train + params.n_test
    pts, label = MAKERS[name](g, total, params.noise)
    order = torch.randperm(total, generator=g)
    idx = order[: params.n_train] if split == "train" else order[params.n_train :]
    y = label[idx]
    return pts[idx].float().contiguous(), (y.float() if y.is_floating_point() else y).contiguous()
