"""Measure a long or deep layer on a short, shallow copy and scale: inference stays cheap.

On the meta device a recurrent layer runs one step at a time (milliseconds each: a
3,200-step LSTM took 91 s to infer) and a stacked layer builds and runs every copy (a
TransformerDecoder with 500 layers: 26 s). Both costs are linear, so shape inference
measures one time step, and one and two stacked copies, and scales:

- along the sequence (``LayerType.time_axis``), the output's time axis, the FLOPs and the
  work grow linearly with the length; parameters and the extras (h_n, c_n) do not change;
- along a depth arg (``LayerType.depth_args``: ``num_layers``…), every measured quantity
  (parameters, FLOPs, work, the extras' dimensions such as h_n's D·num_layers) is
  ``f(1) + (n − 1)·(f(2) − f(1))``: the first copy may differ (an LSTM's first layer reads
  ``input_size``, a final norm is counted once), the others are alike.

Both are checked against the full measurement in tests/models/test_cost.py.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from models import cost
from models.layer_memo import Measured


def along_time(one: Measured, axis: int, steps: int) -> Measured | None:
    """A one-step measurement stretched to ``steps``; None when the output is not laid out
    with that time axis (then the caller measures the whole sequence)."""
    if len(one.shape) <= axis or one.shape[axis] != 1 or not one.output().is_contiguous():
        return None
    shape = (*one.shape[:axis], steps, *one.shape[axis + 1 :])
    return replace(
        one,
        flops=one.flops * steps,
        work=cost.CALL + (one.work - cost.CALL) * steps,
        shape=shape,
        stride=torch.empty(shape, device="meta").stride(),
    )


def along_depth(total: Measured, one: Measured, two: Measured, more: int) -> Measured | None:
    """``total`` plus ``more`` times what a second copy added (``two`` − ``one``); None when
    the copies change the output's layout (then the caller measures the whole stack)."""
    if one.shape != two.shape or one.stride != two.stride or len(one.extras) != len(two.extras):
        return None
    extras = []
    for (name, s_total, dtype), (_, s1, _), (_, s2, _) in zip(
        total.extras, one.extras, two.extras, strict=True
    ):
        if len(s1) != len(s2):
            return None
        extras.append(
            (
                name,
                tuple(t + more * (b - a) for t, a, b in zip(s_total, s1, s2, strict=True)),
                dtype,
            )
        )
    return replace(
        total,
        params=total.params + more * (two.params - one.params),
        flops=total.flops + more * (two.flops - one.flops),
        work=total.work + more * (two.work - one.work),
        extras=tuple(extras),
        warnings=two.warnings,
    )
