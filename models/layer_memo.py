"""What shape inference measured for a layer, remembered by what determines it.

Building a layer on the meta device and running it under ``FlopCounterMode`` costs about
1 ms per layer (25 ms for the LSTM tagger), and the answer depends only on the layer's type,
its validated args and the shape, dtype and strides of what it is fed. An editor
re-validates the whole spec at every keystroke although one layer changed, and a server
infers a model again each time it builds it, so :func:`recall` usually answers. Errors are
never remembered, and the limits are checked by the caller on every inference, so a
remembered measurement can never let a spec past a lower limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

SIZE = 4096  # measurements kept; each is a few hundred bytes


@dataclass(frozen=True)
class Measured:
    """One layer's measured output (as a meta tensor's layout), extras and costs."""

    params: int
    flops: int
    work: int  # models.cost's estimate, in units of about a nanosecond of one CPU core
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: torch.dtype
    extras: tuple[tuple[str, tuple[int, ...], torch.dtype], ...]
    warnings: tuple[str, ...]

    def output(self) -> torch.Tensor:
        """A meta tensor with the measured shape, strides and dtype (views stay views)."""
        return torch.empty_strided(self.shape, self.stride, dtype=self.dtype, device="meta")


_memo: OrderedDict[tuple, Measured] = OrderedDict()
_lock = threading.Lock()


def _frozen(value: Any) -> Any:
    """A hashable copy that keeps types apart (True, 1 and 1.0 are three different args)."""
    if isinstance(value, Mapping):
        return ("map", tuple(sorted((str(k), _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_frozen(v) for v in value))
    return (type(value).__name__, value)


def key(type_name: str, args: Mapping[str, Any], xs: Sequence[torch.Tensor]) -> tuple | None:
    """What the measurement depends on; None when an arg cannot be hashed (not remembered)."""
    fed = tuple((tuple(x.shape), x.dtype, x.stride()) for x in xs)
    k = (type_name, _frozen(args), fed)
    try:
        hash(k)
    except TypeError:
        return None
    return k


def recall(k: tuple | None) -> Measured | None:
    if k is None:
        return None
    with _lock:
        found = _memo.get(k)
        if found is not None:
            _memo.move_to_end(k)
        return found


def remember(k: tuple | None, measured: Measured) -> None:
    if k is None:
        return
    with _lock:
        _memo[k] = measured
        _memo.move_to_end(k)
        while len(_memo) > SIZE:
            _memo.popitem(last=False)


def forget_all() -> None:
    """Empty the memory (tests compare a cold inference with a remembered one)."""
    with _lock:
        _memo.clear()
