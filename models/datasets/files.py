"""File-backed datasets: Fashion-MNIST's gzipped IDX files and scikit-learn's bundled digits.

Both are read with numpy into uint8 tensors (values as stored: 0–255 for Fashion-MNIST,
0–16 for digits); the ``scale`` transform turns them into [0, 1].
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from models.errors import SpecError

FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
_IDX_UBYTE = 0x08
DIGITS_TEST = 360  # 20 % of the 1,797 digits, drawn once with a fixed seed
DIGITS_SEED = 0


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (gzipped) as a uint8 array: magic 0x0000 08 <ndim>, big-endian sizes, data."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _IDX_UBYTE:
        raise SpecError("dataset_corrupt", f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(dims)):
        raise SpecError(
            "dataset_corrupt",
            f"{path} declares {'×'.join(map(str, dims))} values but holds {len(raw) - start}",
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(tuple(dims))


def missing_fmnist_files(folder: Path) -> list[str]:
    """The Fashion-MNIST files that ``folder`` lacks (empty when all four are there)."""
    names = [n for pair in FMNIST_FILES.values() for n in pair]
    return [n for n in names if not (folder / n).is_file()]


def load_fmnist(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 28, 28) uint8 and labels (N,) int64 of one split."""
    images_file, labels_file = FMNIST_FILES[split]
    images = read_idx(folder / images_file)
    labels = read_idx(folder / labels_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise SpecError("dataset_corrupt", f"{folder}: images and labels of {split} do not match")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


def load_digits_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8×8 digits, (N, 1, 8, 8) uint8 (0–16), split once by a seeded permutation."""
    from sklearn.datasets import load_digits  # imported late: sklearn takes ~1 s to import

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(DIGITS_SEED))
    idx = order[DIGITS_TEST:] if split == "train" else order[:DIGITS_TEST]
    return x[idx].contiguous(), y[idx].contiguous()
