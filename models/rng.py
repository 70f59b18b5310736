"""Seeding the global random streams of the devices a job runs on, as ``torch.manual_seed``.

``torch.manual_seed(seed)`` seeds the CPU generator and every CUDA device's, then looks for
MPS, XPU and other backends: about 85 µs on a CPU-only machine, more than a small model's
forward. The jobs seed only the devices they draw from, with the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def cuda_indices(device: torch.device) -> list[int]:
    """``[index]`` of a CUDA device (``fork_rng``'s ``devices``), ``[]`` for any other."""
    return [device.index or 0] if device.type == "cuda" else []


def seed_streams(seed: int, cuda: Sequence[int] = ()) -> None:
    """The CPU generator and those of the CUDA devices ``cuda`` (indices) seeded with
    ``seed``: their numbers are then those after ``torch.manual_seed(seed)``."""
    torch.default_generator.manual_seed(seed)
    for index in cuda:
        with torch.cuda.device(index):
            torch.cuda.manual_seed(seed)
