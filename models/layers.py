"""Small modules the spec needs that torch.nn does not have as classes.

Each class is self-contained (it uses only ``torch`` and ``nn``) because the code
exporter copies its source into the exported file: the exported model runs
without this package.
"""

from __future__ import annotations

import torch
from torch import nn


class MinPool2d(nn.Module):
    """Min pooling, as the tutorial shows it: ``-max_pool2d(-x)``. Not a torch class."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode=ceil_mode)

    def forward(self, x):
        return -self.pool(-x)


class Add(nn.Module):
    """Element-wise sum of its inputs (with broadcasting), e.g. a residual connection."""

    def forward(self, *xs):
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Concat(nn.Module):
    """``torch.cat`` of its inputs along ``dim``."""

    def __init__(self, dim=1):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, *xs):
        return torch.cat(xs, dim=self.dim)


class Mean(nn.Module):
    """Mean over one dimension (e.g. average the tokens of a sequence)."""

    def __init__(self, dim, keepdim=False):
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def extra_repr(self):
        return f"dim={self.dim}, keepdim={self.keepdim}"

    def forward(self, x):
        return x.mean(dim=self.dim, keepdim=self.keepdim)


class Select(nn.Module):
    """Pick one index of a dimension (e.g. the last time step: dim=0, index=-1)."""

    def __init__(self, dim, index):
        super().__init__()
        self.dim = dim
        self.index = index

    def extra_repr(self):
        return f"dim={self.dim}, index={self.index}"

    def forward(self, x):
        return x.select(self.dim, self.index)


class Reshape(nn.Module):
    """``x.reshape(shape)``; one entry may be -1 (inferred)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def extra_repr(self):
        return f"shape={self.shape}"

    def forward(self, x):
        return x.reshape(self.shape)


class Permute(nn.Module):
    """``x.permute(dims)``: reorder dimensions (e.g. (N, L, E) -> (L, N, E))."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def extra_repr(self):
        return f"dims={self.dims}"

    def forward(self, x):
        return x.permute(self.dims)


class Unsqueeze(nn.Module):
    """Insert a dimension of size 1 at ``dim`` (e.g. (L, E) -> (L, 1, E))."""

    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"

    def forward(self, x):
        return x.unsqueeze(self.dim)


HELPERS: tuple[type[nn.Module], ...] = (
    MinPool2d,
    Add,
    Concat,
    Mean,
    Select,
    Reshape,
    Permute,
    Unsqueeze,
)
