"""The statistics the UI shows next to a tensor: mean, std, min, max, zeros, a histogram.

:func:`tensor_stats` gives the same numbers on any device by one of two routes:

- small CPU tensors (at most :data:`NUMPY_MAX_NUMEL` values, e.g. every activation of
  LeNet-5) go through NumPy on a zero-copy view: about ten NumPy calls cost 20-40 µs, where
  the same dozen small torch ops cost 50-120 µs of dispatch each time. A run of a model
  describes every layer, so this is most of a probe's cost on the CPU;
- larger tensors and tensors on an accelerator stay in torch on their own device (only the
  few numbers and the histogram counts come back to the host).

Both routes are checked against each other and against NumPy in ``tests/models``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

NUMPY_MAX_NUMEL = 1 << 15  # measured: beyond this torch's vectorized kernels win


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _widen(lo: float, hi: float) -> tuple[float, float]:
    """A histogram range that is never empty: [v - d, v + d] when all values equal v."""
    if lo == hi:
        d = max(0.5, abs(lo) * 1e-6)
        return lo - d, hi + d
    return lo, hi


def _base(t: torch.Tensor, numel: int, nan_count: int, inf_count: int) -> dict[str, Any]:
    return {
        "shape": list(t.shape),
        "numel": numel,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "zero_fraction": None,
        "nan_count": nan_count,
        "inf_count": inf_count,
    }


def _empty_histogram(bins: int) -> dict[str, list]:
    return {"counts": [0] * bins, "range": [0.0, 1.0]}


def tensor_stats(t: torch.Tensor, bins: int = 30) -> dict:
    """Summary statistics of ``t``, as plain JSON-safe Python numbers.

    Computed in float32 on the tensor's own device. ``mean``, ``std``, ``min``, ``max`` and the
    histogram cover the finite values only (NaN and ±inf are counted in ``nan_count`` and
    ``inf_count``); ``std`` is the population standard deviation (``correction=0``,
    numpy's ``ddof=0``). ``zero_fraction`` is over all elements. The histogram is
    ``{"counts": [...], "range": [lo, hi]}``: ``bins`` equal bins over [min, max] (as
    ``torch.histc``: the maximum falls in the last bin; bin i starts at lo + i·(hi − lo)/bins).
    Only the range is sent, not the bins + 1 edges: parsing 31 17-digit floats per tensor was
    most of a client's JSON decoding of a run. When min == max the range is widened to
    [v - d, v + d] with d = max(0.5, |v|·1e-6). A statistic that does not exist (empty tensor,
    no finite value) is ``None``; an empty tensor's histogram has zero counts over [0, 1].
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    x = t.detach()
    if x.device.type == "cpu" and x.numel() <= NUMPY_MAX_NUMEL:
        return stats_numpy(t, x, bins)
    return stats_torch(t, x, bins)


def stats_numpy(t: torch.Tensor, x: torch.Tensor, bins: int) -> dict:
    """The CPU route for small tensors (see the module doc)."""
    a = (x if x.dtype == torch.float32 else x.to(torch.float32)).reshape(-1).numpy()
    numel = a.size
    if numel == 0:
        return {**_base(t, 0, 0, 0), "histogram": _empty_histogram(bins)}
    lo, hi = float(a.min()), float(a.max())  # NaN propagates, so finite ends: all finite
    nan_count = inf_count = 0
    zero_fraction = int(np.count_nonzero(a == 0)) / numel
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite_mask = np.isfinite(a)
        nan_count = int(np.count_nonzero(np.isnan(a)))
        inf_count = numel - int(np.count_nonzero(finite_mask)) - nan_count
        a = a[finite_mask]
        if a.size == 0:
            stats = _base(t, numel, nan_count, inf_count)
            return {**stats, "zero_fraction": zero_fraction, "histogram": _empty_histogram(bins)}
        lo, hi = float(a.min()), float(a.max())
    mean = a.mean(dtype=np.float64)
    std = math.sqrt(float(np.square(a - mean, dtype=np.float64).mean()))
    stats = _base(t, numel, nan_count, inf_count)
    stats.update(mean=_num(mean), std=_num(std), min=lo, max=hi, zero_fraction=zero_fraction)
    lo, hi = _widen(lo, hi)
    # the bin of each value, as histc: floor((v - lo) / width), the maximum in the last bin
    index = ((a.astype(np.float64) - lo) * (bins / (hi - lo))).astype(np.intp)
    np.minimum(index, bins - 1, out=index)  # values are >= lo: no lower clip needed
    counts = np.bincount(index, minlength=bins)
    stats["histogram"] = {"counts": counts.tolist(), "range": [lo, hi]}
    return stats


def stats_torch(t: torch.Tensor, x: torch.Tensor, bins: int) -> dict:
    """The on-device route for large tensors and accelerators (see the module doc)."""
    x = x.to(torch.float32) if x.dtype != torch.float32 else x
    numel = x.numel()
    mask = torch.isfinite(x)
    n_finite = int(mask.sum())
    if n_finite == numel:  # the common case: no masked copy, no NaN/inf counting
        finite, nan_count, inf_count = x.reshape(-1), 0, 0
    else:
        finite = x[mask]
        nan_count = int(torch.isnan(x).sum())
        inf_count = numel - n_finite - nan_count
    stats = _base(t, numel, nan_count, inf_count)
    if numel:
        stats["zero_fraction"] = float((x == 0).sum()) / numel
    if n_finite == 0:
        stats["histogram"] = _empty_histogram(bins)
        return stats
    lo_t, hi_t = torch.aminmax(finite)
    # one device->host transfer for all four numbers (var+sqrt is faster than std on CPU)
    lo, hi, mean, std = torch.stack(
        [lo_t, hi_t, finite.mean(), finite.var(correction=0).sqrt()]
    ).tolist()
    stats.update(mean=_num(mean), std=_num(std), min=lo, max=hi)
    lo, hi = _widen(lo, hi)
    counts = torch.histc(finite, bins=bins, min=lo, max=hi)
    stats["histogram"] = {"counts": [int(c) for c in counts.tolist()], "range": [lo, hi]}
    return stats


def tensor_stats_many(tensors: list[torch.Tensor], bins: int = 30) -> list[dict]:
    """``[tensor_stats(t, bins) for t in tensors]``, with the small CPU ones done together.

    A probe describes every layer: twelve for LeNet-5, most of them a few hundred values.
    Their statistics come from one concatenated array with segment reductions
    (``np.minimum.reduceat`` …) and one ``np.bincount`` for all histograms, about fifteen
    NumPy calls instead of a dozen per tensor. Empty tensors, tensors holding NaN or ±inf,
    large ones and those on an accelerator take :func:`tensor_stats` one by one.
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    out: list[dict | None] = [None] * len(tensors)
    batch: list[int] = []
    arrays: list[np.ndarray] = []
    for i, t in enumerate(tensors):
        x = t.detach()
        if x.device.type == "cpu" and 0 < x.numel() <= NUMPY_MAX_NUMEL:
            batch.append(i)
            # NumPy's reshape of the zero-copy view: a third of torch's reshape + to + numpy
            x = x if x.dtype == torch.float32 else x.to(torch.float32)
            arrays.append(x.numpy().reshape(-1))
        else:
            out[i] = tensor_stats(t, bins)
    if arrays:
        results = _segments(arrays, bins)
        for i, stats in zip(batch, results, strict=True):
            out[i] = tensor_stats(tensors[i], bins) if stats is None else stats
            out[i]["shape"] = list(tensors[i].shape)
    return out  # type: ignore[return-value]


def _segments(arrays: list[np.ndarray], bins: int) -> list[dict | None]:
    """Statistics of each non-empty float32 array; None for one holding NaN or ±inf.

    The arithmetic is :func:`stats_numpy`'s, value for value (the tests hold the two routes
    to the same counts): sums and spreads in float64, bin = floor((v - lo) · bins / (hi - lo)).
    """
    k = len(arrays)
    sizes = np.array([a.size for a in arrays])
    starts = np.zeros(k, dtype=np.intp)
    np.cumsum(sizes[:-1], out=starts[1:])
    flat = np.concatenate(arrays)  # a fresh array: the bad segments may be zeroed in place
    lows = np.minimum.reduceat(flat, starts).astype(np.float64)
    highs = np.maximum.reduceat(flat, starts).astype(np.float64)
    finite = np.isfinite(lows) & np.isfinite(highs)  # NaN propagates into min and max
    if not finite.all():  # zero the bad segments so that they spoil nothing else
        for j in np.flatnonzero(~finite):
            flat[starts[j] : starts[j] + sizes[j]] = 0.0
        lows[~finite], highs[~finite] = 0.0, 1.0
    means = np.add.reduceat(flat, starts, dtype=np.float64) / sizes
    wide = flat - np.repeat(means, sizes)  # float64; np.repeat: far quicker than means[seg]
    np.multiply(wide, wide, out=wide)
    stds = np.sqrt(np.add.reduceat(wide, starts) / sizes)
    zeros = np.add.reduceat(flat == 0, starts, dtype=np.intp)
    same = lows == highs  # the range widened as in _widen
    pad = np.where(same, np.maximum(0.5, np.abs(lows) * 1e-6), 0.0)
    lo_w, hi_w = lows - pad, highs + pad
    np.subtract(flat, np.repeat(lo_w, sizes), out=wide)  # the float64 buffer, reused
    wide *= np.repeat(bins / (hi_w - lo_w), sizes)
    index = wide.astype(np.intp)
    np.minimum(index, bins - 1, out=index)  # the maximum falls in the last bin, as histc
    index += np.repeat(np.arange(0, k * bins, bins), sizes)
    counts = np.bincount(index, minlength=k * bins).reshape(k, bins)
    rows = zip(
        finite.tolist(),
        sizes.tolist(),
        means.tolist(),
        stds.tolist(),
        lows.tolist(),
        highs.tolist(),
        zeros.tolist(),
        counts.tolist(),
        lo_w.tolist(),
        hi_w.tolist(),
        strict=True,
    )
    results: list[dict | None] = []
    for ok, n, mean, std, lo, hi, zero, hist, start, end in rows:
        if not ok:
            results.append(None)
            continue
        results.append(
            {
                "shape": None,  # set by the caller
                "numel": n,
                "mean": _num(mean),
                "std": _num(std),
                "min": lo,
                "max": hi,
                "zero_fraction": zero / n,
                "nan_count": 0,
                "inf_count": 0,
                "histogram": {"counts": hist, "range": [start, end]},
            }
        )
    return results
