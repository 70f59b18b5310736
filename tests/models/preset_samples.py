"""A preset built in eval mode (seed 0) and a seeded random input of its declared shape: what
the gradient and attribution tests feed both the engine and their torch/Captum oracles."""

from __future__ import annotations

import torch

from models.build import build
from models.presets import PRESETS


def built(name: str):
    b = build(PRESETS[name].spec, seed=0)
    b.model.eval()
    return b


def sample(name: str, seed: int = 1) -> torch.Tensor:
    shape = PRESETS[name].spec["inputs"]["x"]["shape"]
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
