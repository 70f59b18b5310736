"""Pooling: the output, every output cell's input window, and which input cell won.

Windows are separable: along each spatial dim, output position ``o`` covers a set of input
positions, and an output cell covers the product of its positions' sets. For a fixed-kernel
pool, position ``o`` spans ``[start, end)`` with ``start = o·stride − padding`` and
``end = start + dilation·(kernel − 1) + 1`` (padded coordinates may be negative or past the
input), and reads the input indices ``start + j·dilation`` (j < kernel) that fall inside the
input. Adaptive pooling's window is ``[⌊o·L/out⌋, ⌈(o+1)·L/out⌉)``, as torch computes it.

Min pooling is ``−max_pool(−x)``; its winners come from ``return_indices`` on ``−x``. Winners
are flat indices into each (C or N·C) plane: ``h·W + w`` for 2-D, ``l`` for 1-D.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F

from models.effects import check_cost, check_work
from models.errors import SpecError, fmt_shape

Op = Literal["max", "avg", "min", "adaptive_avg", "adaptive_max"]
OPS: tuple[str, ...] = ("max", "avg", "min", "adaptive_avg", "adaptive_max")
AXES = {1: ("L",), 2: ("H", "W")}
_CLASS = {
    "max": "MaxPool",
    "min": "MaxPool",
    "avg": "AvgPool",
    "adaptive_avg": "AdaptiveAvgPool",
    "adaptive_max": "AdaptiveMaxPool",
}
IntOrInts = int | Sequence[int]


def _bad(message: str, code: str = "invalid_arg") -> SpecError:
    return SpecError(code, message)


def per_dim(value: IntOrInts, dims: int, name: str, low: int) -> tuple[int, ...]:
    """One int per spatial dim from an int or a list of ``dims`` ints (each at least ``low``)."""
    values = (value,) * dims if isinstance(value, int) else tuple(value)
    if len(values) != dims:
        raise _bad(f"{name} needs one number or {dims} (one per spatial dim); got {list(values)}")
    if any(isinstance(v, bool) or not isinstance(v, int) or v < low for v in values):
        raise _bad(f"{name} must hold integers of at least {low}; got {list(values)}")
    return values


def output_length(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Torch's ``pooling_output_shape``: how many windows fit along one dim."""
    span = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = span // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window would start in the right padding
    return out


def fixed_windows(size: int, k: int, s: int, p: int, d: int, out: int) -> list[dict[str, Any]]:
    """The window of each output position along one dim of a fixed-kernel pool."""
    cells = []
    for o in range(out):
        start = o * s - p
        indices = [i for i in range(start, start + d * (k - 1) + 1, d) if 0 <= i < size]
        cells.append({"start": start, "end": start + d * (k - 1) + 1, "indices": indices})
    return cells


def adaptive_windows(size: int, out: int) -> list[dict[str, Any]]:
    """The window of each output position along one dim of an adaptive pool."""
    cells = []
    for o in range(out):
        start, end = (o * size) // out, -((-(o + 1) * size) // out)
        cells.append({"start": start, "end": end, "indices": list(range(start, end))})
    return cells


def _check_input(x: torch.Tensor, dims: int) -> None:
    if dims not in AXES:
        raise _bad(f"dims must be 1 or 2, not {dims}")
    layouts = "(N, C, L) or (C, L)" if dims == 1 else "(N, C, H, W) or (C, H, W)"
    if x.ndim not in (dims + 1, dims + 2):
        raise _bad(
            f"{dims}-D pooling takes {layouts}; the input is {fmt_shape(tuple(x.shape))} "
            f"(rank {x.ndim}). Give it {dims + 1} or {dims + 2} dimensions.",
            "input_shape_mismatch",
        )
    if x.numel() == 0:
        raise _bad("the input is empty; give it at least one value", "input_shape_mismatch")


def _torch_call(op: str, dims: int, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={_short(v)}" for k, v in args.items())
    call = f"nn.{_CLASS[op]}{dims}d({shown})"
    return f"-{call}(-x)" if op == "min" else f"{call}(x)"


def _short(v: Any) -> Any:
    if isinstance(v, tuple | list) and len(set(v)) == 1:
        return v[0]
    return tuple(v) if isinstance(v, list) else v


def _run_fixed(x: torch.Tensor, op: str, dims: int, a: dict[str, Any]) -> tuple:
    kw = {k: a[k] for k in ("kernel_size", "stride", "padding", "ceil_mode")}
    if op == "avg":
        fn = F.avg_pool1d if dims == 1 else F.avg_pool2d
        return fn(x, **kw, count_include_pad=a["count_include_pad"]), None
    fn = F.max_pool1d if dims == 1 else F.max_pool2d
    sign = -1.0 if op == "min" else 1.0
    out, winners = fn(sign * x, **kw, dilation=a["dilation"], return_indices=True)
    return sign * out, winners


def _divisor(sizes: tuple[int, ...], a: dict[str, Any], windows: list[list[dict]]) -> torch.Tensor:
    """What each AvgPool output cell divides its sum by (torch's ``divide_factor``)."""
    per_axis = []
    for size, k, p, cells in zip(sizes, a["kernel_size"], a["padding"], windows, strict=True):
        if a["count_include_pad"]:
            counts = [min(c["start"] + k, size + p) - c["start"] for c in cells]
        else:
            counts = [len(c["indices"]) for c in cells]
        per_axis.append(torch.tensor(counts, dtype=torch.float32))
    div = per_axis[0]
    for extra in per_axis[1:]:
        div = div[:, None] * extra[None, :]
    return div


def pool(
    x: torch.Tensor,
    op: Op = "max",
    *,
    dims: int = 2,
    kernel_size: IntOrInts | None = None,
    stride: IntOrInts | None = None,
    padding: IntOrInts = 0,
    dilation: IntOrInts = 1,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    output_size: IntOrInts | None = None,
    max_elements: int | None = None,
    max_work: int | None = None,
) -> dict[str, Any]:
    """Pool ``x`` ((N, C, L)/(C, L) or (N, C, H, W)/(C, H, W)) and explain every output cell.

    Returns ``op``, ``dims``, ``args`` (per-dim lists, as used), ``torch_call``, ``input``,
    ``output``, ``windows`` (per spatial axis: ``{"axis", "size", "cells": [{"start", "end",
    "indices"}]}`` with one cell per output position), ``winners`` (max/min: flat indices into
    each plane, shape of the output) and ``divisor`` (avg: the spatial output grid of
    divisors). Kernels larger than the padded input are refused with both sizes named.
    """
    if op not in OPS:
        raise _bad(f"op must be one of {', '.join(OPS)}, not {op!r}")
    _check_input(x, dims)
    sizes = tuple(int(s) for s in x.shape[-dims:])
    axes = AXES[dims]
    if op.startswith("adaptive"):
        if output_size is None:
            raise _bad("adaptive pooling needs output_size (one number or one per spatial dim)")
        outs = per_dim(output_size, dims, "output_size", 1)
        check_cost("the pooled output", math.prod(x.shape[:-dims]) * math.prod(outs), max_elements)
        # an adaptive window is at most ceil(size / out) + 1 long along each axis
        longest = [-(-s // o) + 1 for s, o in zip(sizes, outs, strict=True)]
        planes = math.prod(x.shape[:-dims])
        check_work("the pooling", planes * math.prod(outs) * math.prod(longest), max_work)
        args: dict[str, Any] = {"output_size": list(outs)}
        windows = [adaptive_windows(s, o) for s, o in zip(sizes, outs, strict=True)]
        if op == "adaptive_avg":
            fn = F.adaptive_avg_pool1d if dims == 1 else F.adaptive_avg_pool2d
            out, winners = fn(x, outs), None
        else:
            fn = F.adaptive_max_pool1d if dims == 1 else F.adaptive_max_pool2d
            out, winners = fn(x, outs, return_indices=True)
    else:
        if kernel_size is None:
            raise _bad(f"{op} pooling needs kernel_size (one number or one per spatial dim)")
        ks = per_dim(kernel_size, dims, "kernel_size", 1)
        ss = per_dim(stride if stride is not None else ks, dims, "stride", 1)
        ps = per_dim(padding, dims, "padding", 0)
        ds = per_dim(dilation, dims, "dilation", 1)
        if op == "avg" and any(d != 1 for d in ds):
            raise _bad("AvgPool has no dilation; set dilation to 1 (or use max or min pooling)")
        for axis, size, k, p, d in zip(axes, sizes, ks, ps, ds, strict=True):
            if p > k // 2:
                raise _bad(
                    f"padding along {axis} is {p}, but torch allows at most half the kernel "
                    f"size ({k} // 2 = {k // 2}); lower padding or enlarge the kernel"
                )
            span = d * (k - 1) + 1
            if span > size + 2 * p:
                dil = f" with dilation {d}" if d != 1 else ""
                raise SpecError(
                    "kernel_too_large",
                    f"the kernel spans {span} along {axis} (kernel_size {k}{dil}), but the padded "
                    f"input is only {size + 2 * p} there ({size} + 2×{p} padding); use a kernel "
                    f"of at most {size + 2 * p} or add padding",
                    detail={"axis": axis, "kernel_span": span, "padded_size": size + 2 * p},
                )
        outs = tuple(
            output_length(s, k, st, p, d, ceil_mode)
            for s, k, st, p, d in zip(sizes, ks, ss, ps, ds, strict=True)
        )
        check_cost("the pooled output", math.prod(x.shape[:-dims]) * math.prod(outs), max_elements)
        planes = math.prod(x.shape[:-dims])
        check_work("the pooling", planes * math.prod(outs) * math.prod(ks), max_work)
        args = {"kernel_size": list(ks), "stride": list(ss), "padding": list(ps)}
        if op != "avg":
            args["dilation"] = list(ds)
        args["ceil_mode"] = ceil_mode
        if op == "avg":
            args["count_include_pad"] = count_include_pad
        windows = [
            fixed_windows(s, k, st, p, d, o)
            for s, k, st, p, d, o in zip(sizes, ks, ss, ps, ds, outs, strict=True)
        ]
        out, winners = _run_fixed(x, op, dims, args | {"dilation": list(ds)})
    shown = {k: v for k, v in args.items() if not _is_default(k, v, args)}
    return {
        "op": op,
        "dims": dims,
        "args": args,
        "torch_call": _torch_call(op, dims, shown),
        "input": x,
        "output": out,
        "windows": [
            {"axis": axis, "size": size, "cells": cells}
            for axis, size, cells in zip(axes, sizes, windows, strict=True)
        ],
        "winners": winners,
        "divisor": _divisor(sizes, args, windows) if op == "avg" else None,
    }


def _is_default(key: str, value: Any, args: dict[str, Any]) -> bool:
    defaults = {"padding": 0, "dilation": 1, "ceil_mode": False, "count_include_pad": True}
    if key == "stride":
        return value == args["kernel_size"]
    if key in defaults:
        d = defaults[key]
        return value == d if isinstance(value, bool) else all(v == d for v in value)
    return False
