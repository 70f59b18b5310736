"""The work estimate: what one layer's forward pass costs, beyond its FLOPs.

``FlopCounterMode`` counts matrix products and convolutions only: pooling, normalization,
softmax and elementwise work count 0, so a MaxPool2d(100, stride=1) on a 500×500 input
(1.6·10⁹ window elements, seconds of CPU) passed a FLOP limit. The work estimate counts
what the layer's forward really dispatches on the meta device (:class:`WorkCounter`, a
``TorchDispatchMode`` nested in the FLOP counter: nothing is allocated), weighted by this one
table, in **work units of about one nanosecond of one CPU core** (measured on a 2-core
x86 box with one torch thread: ``bench/bench_limits.py`` prints the estimate against the
measured time of every layer type):

=================  ======================================================================
``FLOPS_PER_UNIT``  matmul and convolution FLOPs (FlopCounterMode's formulas) per unit
``ELEMENT``         each element an operator reads or writes (memory traffic, elementwise work
                    and reductions such as a global average pool's mean); a matmul's or a
                    convolution's reads are in its FLOPs
``WINDOW``          each element of each pooling window (max, avg, Lp, adaptive; dilation
                    spreads a window but does not grow it)
``OP``              each operator dispatched (torch's per-call overhead; a recurrent layer
                    pays it at every time step)
``CALL``            each module called: the layer and each of its submodules (``__call__``
                    and the spec's plumbing)
=================  ======================================================================

A layer's work is ``CALL·modules + OP·ops + ELEMENT·elements + WINDOW·windows + flops //
FLOPS_PER_UNIT``; a model's is the sum over its layers, checked against
``Limits.max_work`` before anything runs, and turned into a time budget by
:func:`budget_seconds`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

FLOPS_PER_UNIT = 20  # ~100 GFLOP/s for a large matmul on one core; small ones and convs less
ELEMENT = 2  # ReLU 0.9 ns per element read or written on one core, tanh 1.3, Mish 2
WINDOW = 4  # max pooling: 0.6 ns per window element (k=100) to 3.4 ns (k=3)
OP = 500  # an aten call with its Python and dispatch overhead: about 0.5 µs
CALL = 30_000  # a module's __call__ with its Python forward: LeNet-5 runs 12 in 0.3 ms
UNITS_PER_SECOND = 10**9  # the unit is about a nanosecond
JOB_GRACE_S = 10.0  # every job may take this long whatever its estimate (a cold start, a load)
JOB_SLACK = 10.0  # ... plus this many times its estimated time (a loaded or slower CPU)

_POOLS = {
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
}
_ADAPTIVE = {
    "adaptive_max_pool1d": 1,
    "adaptive_max_pool2d": 2,
    "adaptive_max_pool3d": 3,
    "_adaptive_avg_pool2d": 2,
    "_adaptive_avg_pool3d": 3,
    "adaptive_avg_pool1d": 1,
}


def _numel(shape: Sequence[int]) -> int:
    return math.prod(int(s) for s in shape)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)):
        return next((o for o in out if isinstance(o, torch.Tensor)), None)
    return None


def _adaptive_window(size_in: int, size_out: int) -> int:
    """The largest window an adaptive pool uses along one dimension (torch's start/end rule)."""
    return -(-size_in // size_out) + (1 if size_in % size_out else 0)


def window_elements(name: str, args: Sequence[Any], out: Any) -> int:
    """Elements visited by a pooling operator's windows: output elements × window size."""
    first = _first_tensor(out)
    if first is None:
        return 0
    if name in _POOLS:
        kernel = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
        return first.numel() * _numel(kernel)
    if name in _ADAPTIVE:
        n = _ADAPTIVE[name]
        size_in = list(args[0].shape[-n:])
        size_out = list(first.shape[-n:])
        window = math.prod(_adaptive_window(i, o) for i, o in zip(size_in, size_out, strict=True))
        return first.numel() * window
    return 0


class WorkCounter(TorchDispatchMode):
    """Counts what a forward dispatches: operators, elements written, pooling windows, and
    FLOPs by torch's own formulas (``torch.utils.flop_counter.flop_registry``, what
    ``FlopCounterMode`` counts with: the tests hold the two equal for every layer type).

    One mode instead of ``FlopCounterMode`` around this one: that mode also tracks modules
    and tries to decompose every operator it has no formula for into Python references,
    which made a cold shape inference cost milliseconds per layer; and its first use imports
    ``torch._dynamo`` and sympy (about two seconds)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops = self.elements = self.windows = self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.flops += int(count(*args, **(kwargs or {}), out_val=out))
        if not func.is_view:
            outs = out if isinstance(out, (tuple, list)) else (out,)
            # a matmul's or convolution's reads are in its FLOPs (a recurrent layer would
            # otherwise pay for reading its weights again at every step)
            ins = [] if func.overloadpacket in flop_registry else [*args, *(kwargs or {}).values()]
            self.elements += sum(t.numel() for t in (*ins, *outs) if isinstance(t, torch.Tensor))
            self.windows += window_elements(func.__name__.split(".")[0], args, out)
        return out

    def work(self, flops: int, modules: int = 1) -> int:
        """The layer's work units (the table above); ``modules``: the layer's module and its
        submodules (a transformer layer calls a dozen), each called once."""
        return (
            CALL * modules
            + OP * self.ops
            + ELEMENT * self.elements
            + WINDOW * self.windows
            + flops // FLOPS_PER_UNIT
        )


def estimated_seconds(work: int) -> float:
    return work / UNITS_PER_SECOND


def budget_seconds(work: int, hard_limit_s: float) -> float:
    """A job's time budget: a grace plus a slack times its estimate, at most the hard limit."""
    return min(float(hard_limit_s), JOB_GRACE_S + JOB_SLACK * estimated_seconds(work))
