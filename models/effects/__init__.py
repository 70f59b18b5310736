"""The effects lab: experiments on the layers that do not learn, and the Linear layer by hand.

One module per experiment, each pure torch on the CPU, each returning a plain dict of
numbers and tensors that a view draws (and a notebook prints):

- :mod:`~models.effects.pooling`: max / avg / min / adaptive pooling with every output
  cell's input window and, for max and min, the winning cell;
- :mod:`~models.effects.normalization`: BatchNorm, LayerNorm, GroupNorm, InstanceNorm, before
  and after, train vs eval, running statistics after k training calls;
- :mod:`~models.effects.dropout`: N seeded passes, masks, zero fractions, the 1/(1−p) scaling;
- :mod:`~models.effects.activations`: f(x) and f′(x), softmax with a temperature, and why a
  stack of Linear layers without activations is one matrix;
- :mod:`~models.effects.losses`: values, reductions, gradients and a curve of each loss;
- :mod:`~models.effects.linear`: ``y = x·Wᵀ + b`` worked term by term;
- :mod:`~models.effects.source`: where the input tensor comes from.

:func:`to_payloads` turns a result into JSON with :func:`models.tensors.encode`.
"""

from __future__ import annotations

from typing import Any

import torch

from models.cost import WINDOW
from models.errors import LimitError
from models.tensors import Encoding, encode


def to_payloads(result: Any, encoding: Encoding = "list") -> Any:
    """A copy of ``result`` with every tensor encoded as a payload.

    Integer tensors (window winners) are exact in ``list`` and ``f32`` payloads only, so they
    are sent as ``f32`` when ``f16`` is asked for.
    """
    if isinstance(result, torch.Tensor):
        integer = not result.is_floating_point() and result.dtype != torch.bool
        return encode(result, "f32" if integer and encoding == "f16" else encoding)
    if isinstance(result, dict):
        return {k: to_payloads(v, encoding) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [to_payloads(v, encoding) for v in result]
    return result


def check_cost(what: str, value: int, limit: int | None) -> None:
    """Refuse an experiment whose work (elements touched in all) is over ``limit``."""
    if limit is not None and value > limit:
        raise LimitError(
            f"{what} would touch {value:,} values; this playground allows at most {limit:,} per "
            "experiment. Use a smaller input or fewer repetitions.",
            detail={"limit": limit, "actual": value, "limit_key": "max_input_elements"},
        )


def check_work(what: str, windows: int, limit: int | None) -> None:
    """Refuse a pooling whose window elements, in ``models.cost``'s work units, are over
    ``limit`` (``Limits.max_work``: the same estimate and limit as a model's pooling layer)."""
    work = windows * WINDOW
    if limit is not None and work > limit:
        raise LimitError(
            f"{what} would visit {windows:,} window elements (estimated work {work:,}); this "
            f"playground allows a work of at most {limit:,}. Use a smaller input, a smaller "
            "kernel or a larger stride.",
            detail={"limit": limit, "actual": work, "limit_key": "max_work"},
        )


__all__ = ["check_cost", "check_work", "to_payloads"]
