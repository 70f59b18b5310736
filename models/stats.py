"""The statistics the UI shows next to a tensor: mean, std, min, max, zeros, a histogram.

One definition of every number, for activations, inputs, parameters and the effects lab.
The values are read as float32 on the host (an accelerator's tensor is copied once, as its
encoding copies it) and each statistic is one pass over them:

- min and max, first. NaN propagates into both and ±inf is one of them, so when they are
  finite every value is: NaN/inf are counted, and a finite-only copy made, only for the
  tensors where they come out non-finite (:func:`_with_nonfinite`);
- the sum S, and the spread ``ss = sum((v - m)²)`` around ``m = float32(S/n)`` corrected
  for the shift: ``var = ss/n − ((S − n·m)/n)²`` (population variance); the deviations in
  float32, or float64 when a range is so large that their squares could overflow;
- the zeros, by one comparison;
- the histogram's bins from the min and max already known: ``floor((v − lo)·bins/(hi − lo))``
  with the maximum in the last bin (as ``torch.histc``), counted by one ``bincount``.

Two routes compute these same formulas, chosen by size, not by caller: a tensor of more
than :data:`JOIN_MAX_NUMEL` values is described alone by torch's vectorised reductions on a
zero-copy view (:func:`_alone`: ``aminmax``, cascade float32 sums, bytes counted in pairs);
the smaller ones of one call are joined into one array and described together by NumPy
segment reductions with float64 sums (:func:`_summaries`): a probe describes every layer,
most of them a few hundred values, and a dozen NumPy calls in all cost less than a dozen
torch calls per tensor. The tests hold every number of both routes against torch (float64
over the finite values, ``torch.histc``), for NaN, ±inf, empty, huge and constant tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

JOIN_MAX_NUMEL = 1 << 14  # measured: beyond this a tensor's own reductions win
PAIRS_MIN_NUMEL = 1 << 17  # measured: below this the 32768 pair counts cost more than they save
_F32_SAFE = 1e37  # below this, squares and sums of deviations stay finite in float32


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _widen(lo: float, hi: float) -> tuple[float, float]:
    """A histogram range that is never empty: [v - d, v + d] when all values equal v."""
    if lo == hi:
        d = max(0.5, abs(lo) * 1e-6)
        return lo - d, hi + d
    return lo, hi


def _entry(t: torch.Tensor, numel: int, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "shape": list(t.shape),
        "numel": numel,
        "mean": None,
        "std": None,
        "min": None,
        "max": None,
        "zero_fraction": None,
        "nan_count": 0,
        "inf_count": 0,
    }
    out.update(values)
    return out


def _empty_histogram(bins: int) -> dict[str, list]:
    return {"counts": [0] * bins, "range": [0.0, 1.0]}


def tensor_stats(t: torch.Tensor, bins: int = 30) -> dict:
    """Summary statistics of ``t``, as plain JSON-safe Python numbers.

    Exact over the whole tensor (float32 values; see the module doc). ``mean``, ``std``,
    ``min``, ``max`` and the histogram cover the finite values only (NaN and ±inf are counted
    in ``nan_count`` and ``inf_count``); ``std`` is the population standard deviation
    (``correction=0``, numpy's ``ddof=0``). ``zero_fraction`` is over all elements. The
    histogram is ``{"counts": [...], "range": [lo, hi]}``: ``bins`` equal bins over [min, max]
    (as ``torch.histc``: the maximum falls in the last bin; bin i starts at
    lo + i·(hi − lo)/bins). Only the range is sent, not the bins + 1 edges: parsing 31
    17-digit floats per tensor was most of a client's JSON decoding of a run. When
    min == max the range is widened to [v - d, v + d] with d = max(0.5, |v|·1e-6). A
    statistic that does not exist (empty tensor, no finite value) is ``None``; an empty
    tensor's histogram has zero counts over [0, 1].
    """
    return tensor_stats_many([t], bins)[0]


def tensor_stats_many(
    tensors: Sequence[torch.Tensor], bins: int = 30, *, histogram: bool = True
) -> list[dict]:
    """``[tensor_stats(t, bins) for t in tensors]``, the small ones described together.

    Without ``histogram`` the entries have no "histogram" key (the parameter table's use:
    mean, std, min and max of every parameter, no counts).
    """
    if bins < 1:
        raise ValueError("bins must be at least 1")
    out: list[dict | None] = [None] * len(tensors)
    joined: list[int] = []
    arrays: list[np.ndarray] = []
    scratch = _Scratch()
    for i, t in enumerate(tensors):
        values = _host_values(t)
        if values.size == 0:
            out[i] = _entry(t, 0)
            if histogram:
                out[i]["histogram"] = _empty_histogram(bins)
        elif values.size > JOIN_MAX_NUMEL:
            out[i] = _alone(values, bins, histogram, scratch)
        else:
            joined.append(i)
            arrays.append(values)
    if joined:
        for i, stats in zip(joined, _summaries(arrays, bins, histogram), strict=True):
            out[i] = stats
    for t, stats in zip(tensors, out, strict=True):
        stats["shape"] = list(t.shape)  # type: ignore[index]
    return out  # type: ignore[return-value]


def _host_values(t: torch.Tensor) -> np.ndarray:
    """The tensor's values as a flat float32 NumPy array (a zero-copy view when it can be)."""
    x = t.detach()
    if x.device.type != "cpu":
        x = x.cpu()
    if x.dtype != torch.float32:
        x = x.to(torch.float32)
    return x.numpy().reshape(-1)


def _summaries(arrays: list[np.ndarray], bins: int, histogram: bool) -> list[dict]:
    """The statistics of each non-empty float32 array (read only: they may be a tensor's
    memory), joined into one and reduced by segments; see the module doc."""
    k = len(arrays)
    sizes = np.array([a.size for a in arrays], dtype=np.intp)
    starts = np.zeros(k, dtype=np.intp)
    np.cumsum(sizes[:-1], out=starts[1:])
    flat = np.concatenate(arrays)
    lows = np.minimum.reduceat(flat, starts).astype(np.float64)
    highs = np.maximum.reduceat(flat, starts).astype(np.float64)
    finite = np.isfinite(lows) & np.isfinite(highs)  # NaN propagates into min and max
    if not finite.all():
        return _with_nonfinite(arrays, finite, bins, histogram)

    def each(v: np.ndarray, dtype: Any = np.float32) -> np.ndarray:
        """A per-array number repeated for each of the array's values."""
        return np.repeat(v.astype(dtype, copy=False), sizes)

    def sums(v: np.ndarray) -> np.ndarray:
        return np.add.reduceat(v, starts, dtype=np.float64)

    total = sums(flat)
    means = total / sizes
    spread = np.maximum(np.abs(lows), np.abs(highs))
    work = np.float32 if (highs - lows).max() < math.sqrt(_F32_SAFE / flat.size) else np.float64
    shift = means.astype(np.float32).astype(np.float64)  # m, as the deviations use it
    dev = np.subtract(flat, each(shift, work), dtype=work)
    np.multiply(dev, dev, out=dev)
    variances = sums(dev) / sizes - np.square((total - sizes * shift) / sizes)
    stds = np.sqrt(np.maximum(variances, 0.0))
    zeros = np.add.reduceat(flat == 0, starts, dtype=np.intp)
    columns: dict[str, list] = {
        "mean": means.tolist(),
        "std": stds.tolist(),
        "min": lows.tolist(),
        "max": highs.tolist(),
        "zero": zeros.tolist(),
    }
    if histogram:
        columns.update(_histograms(flat, lows, highs, spread, bins, each, k, sizes))
    rows = zip(
        sizes.tolist(),
        columns["mean"],
        columns["std"],
        columns["min"],
        columns["max"],
        columns["zero"],
        columns.get("counts", [None] * k),
        columns.get("range", [None] * k),
        strict=True,
    )
    return [_row(*row) for row in rows]


def _row(
    n: int, mean: float, std: float, lo: float, hi: float, zeros: int, counts, span
) -> dict[str, Any]:
    row = {
        "shape": None,  # set by the caller
        "numel": n,
        "mean": _num(mean),
        "std": _num(std),
        "min": lo,
        "max": hi,
        "zero_fraction": zeros / n,
        "nan_count": 0,
        "inf_count": 0,
    }
    if counts is not None:
        row["histogram"] = {"counts": counts, "range": span}
    return row


class _Scratch:
    """Buffers reused from one large tensor to the next (fresh memory costs page faults)."""

    def __init__(self) -> None:
        self._buffers: dict[torch.dtype, torch.Tensor] = {}

    def get(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        buf = self._buffers.get(dtype)
        if buf is None or buf.numel() < n:
            buf = self._buffers[dtype] = torch.empty(n, dtype=dtype)
        return buf[:n]


def _alone(a: np.ndarray, bins: int, histogram: bool, scratch: _Scratch) -> dict:
    """The statistics of one large non-empty float32 array (read only), as
    :func:`_summaries` computes them, each a single reduction of torch over the values:
    float32 sums (torch's cascade) while every number stays far inside float32's range."""
    x = torch.from_numpy(a)
    lo_t, hi_t = torch.aminmax(x)
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # NaN propagates into min and max
        return _with_nonfinite([a], np.array([False]), bins, histogram)[0]
    n = a.size
    small = max(abs(lo), abs(hi)) * n < _F32_SAFE and (hi - lo) ** 2 * n < _F32_SAFE
    if small:
        total = float(x.sum())
        shift = float(np.float32(total / n))  # m, as the deviations use it
        dev = torch.sub(x, shift, out=scratch.get(n, torch.float32))
        spread = float(dev.mul_(dev).sum())
    else:
        wide = x.to(torch.float64)
        total = float(wide.sum())
        shift = float(np.float32(total / n))
        spread = float(wide.sub_(shift).square_().sum())
    mean = total / n
    std = math.sqrt(max(spread / n - ((total - n * shift) / n) ** 2, 0.0))
    zeros = int(np.count_nonzero(a == 0))
    counts = span = None
    if histogram:
        lo_w, hi_w = _widen(lo, hi)
        counts, span = _counts(x, lo_w, hi_w, bins, scratch), [lo_w, hi_w]
    return _row(n, mean, std, lo, hi, zeros, counts, span)


def _counts(x: torch.Tensor, lo: float, hi: float, bins: int, scratch: _Scratch) -> list[int]:
    """Histogram counts of one large array: floor((v - lo)·bins/(hi - lo)), the maximum (bin
    ``bins``) folded into the last bin, as histc."""
    n = x.numel()
    scale = bins / (hi - lo)
    if max(abs(lo), abs(hi)) < _F32_SAFE and scale < _F32_SAFE:
        # lo rounds down or to min in float32, so v - lo >= 0: no lower clip needed
        pos = torch.sub(x, lo, out=scratch.get(n, torch.float32)).mul_(scale)
    else:
        pos = x.to(torch.float64).sub_(lo).mul_(scale)
    index = scratch.get(n, torch.int32)
    index.copy_(pos)  # truncation: the floor of a value >= 0
    if bins >= 127 or n < PAIRS_MIN_NUMEL:
        counts = torch.bincount(index, minlength=bins + 1)
    else:
        # bytes counted in pairs (one int16 per two values): half the increments of a plain
        # bincount, whose repeated increments of one bin (a ReLU's zeros) stall the CPU
        small = scratch.get(n + (n & 1), torch.uint8)
        small[n:] = 127  # an odd count: a padding byte out of every bin's way
        small[:n].copy_(index)
        pairs = torch.bincount(small.view(torch.int16), minlength=1 << 15)
        grid = pairs[: 128 * 256].reshape(128, 256)
        counts = grid.sum(0)[: bins + 1] + grid.sum(1)[: bins + 1]
    folded = counts[: bins + 1].tolist()
    folded[bins - 1] += folded.pop()
    return folded


def _histograms(flat, lows, highs, spread, bins, each, k, sizes) -> dict[str, list]:
    """Each array's counts in ``bins`` equal bins over its widened [min, max]."""
    same = lows == highs  # the range widened as in _widen
    pad = np.where(same, np.maximum(0.5, np.abs(lows) * 1e-6), 0.0)
    lo_w, hi_w = lows - pad, highs + pad
    scale = bins / (hi_w - lo_w)
    # float32 bins when every number stays far inside float32's range; float64 otherwise
    small = spread.max() < _F32_SAFE and scale.max() < _F32_SAFE
    work = np.float32 if small else np.float64
    # lo_w rounds down or to min in float32, so v - lo_w >= 0: no lower clip needed
    pos = np.subtract(flat, each(lo_w, work), dtype=work)
    np.multiply(pos, each(scale, work), out=pos)
    index = pos.astype(np.intp)
    np.minimum(index, bins - 1, out=index)  # the maximum falls in the last bin, as histc
    index += np.repeat(np.arange(0, k * bins, bins), sizes)
    counts = np.bincount(index, minlength=k * bins).reshape(k, bins)
    return {
        "counts": counts.tolist(),
        "range": np.stack([lo_w, hi_w], axis=1).tolist(),
    }


def _with_nonfinite(
    arrays: list[np.ndarray], finite: np.ndarray, bins: int, histogram: bool
) -> list[dict]:
    """The arrays holding NaN or ±inf: counted, then described by their finite values."""
    good = [j for j in range(len(arrays)) if finite[j]]
    out: list[dict | None] = [None] * len(arrays)
    if good:
        for j, stats in zip(
            good, _summaries([arrays[j] for j in good], bins, histogram), strict=True
        ):
            out[j] = stats
    for j in np.flatnonzero(~finite).tolist():
        a = arrays[j]
        mask = np.isfinite(a)
        nan_count = int(np.count_nonzero(np.isnan(a)))
        inf_count = a.size - int(np.count_nonzero(mask)) - nan_count
        kept = a[mask]
        if kept.size > JOIN_MAX_NUMEL:
            stats = _alone(kept, bins, histogram, _Scratch())
        elif kept.size:
            stats = _summaries([kept], bins, histogram)[0]
        else:
            stats = _entry(torch.empty(0), a.size)
            if histogram:
                stats["histogram"] = _empty_histogram(bins)
        stats.update(
            numel=a.size,
            zero_fraction=int(np.count_nonzero(a == 0)) / a.size,
            nan_count=nan_count,
            inf_count=inf_count,
        )
        out[j] = stats
    return out  # type: ignore[return-value]
