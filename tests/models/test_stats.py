"""Tensor statistics (models/stats.py): against torch and NumPy in float64, alone and in
batches (small tensors are described together, large ones alone)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.stats import (
    JOIN_MAX_NUMEL,
    tensor_stats,
    tensor_stats_many,
)


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_stats_match_numpy() -> None:
    t = _rand(4, 250, seed=3) * 2 + 1
    s = tensor_stats(t, bins=30)
    a = t.numpy().astype(np.float64)
    assert s["shape"] == [4, 250] and s["numel"] == 1000 and s["nan_count"] == 0
    assert s["mean"] == pytest.approx(a.mean(), rel=1e-5)
    assert s["std"] == pytest.approx(a.std(ddof=0), rel=1e-5)
    assert s["min"] == pytest.approx(a.min()) and s["max"] == pytest.approx(a.max())
    assert s["histogram"]["range"] == [s["min"], s["max"]]
    assert len(s["histogram"]["counts"]) == 30
    counts, _ = np.histogram(a, bins=30, range=(a.min(), a.max()))
    assert sum(s["histogram"]["counts"]) == 1000
    assert np.abs(np.array(s["histogram"]["counts"]) - counts).sum() <= 2
    json.dumps(s, allow_nan=False)


def test_zero_fraction_of_relu_output() -> None:
    x = torch.relu(_rand(10_000, seed=1))
    s = tensor_stats(x)
    assert s["zero_fraction"] == pytest.approx(float((x.numpy() == 0).mean()))
    assert s["min"] == 0.0


def test_stats_nonfinite_single_and_empty() -> None:
    t = torch.tensor([1.0, 3.0, float("nan"), float("inf")])
    s = tensor_stats(t, bins=4)
    assert s["nan_count"] == 1 and s["inf_count"] == 1
    assert s["mean"] == 2.0 and s["std"] == 1.0 and (s["min"], s["max"]) == (1.0, 3.0)
    assert s["histogram"]["counts"] == [1, 0, 0, 1]
    one = tensor_stats(torch.tensor([7.0]), bins=3)
    assert one["std"] == 0.0 and one["histogram"]["counts"] == [0, 1, 0]
    assert one["histogram"]["range"] == [6.5, 7.5]  # widened by max(0.5, |v|·1e-6)
    empty = tensor_stats(torch.zeros(0, 3), bins=5)
    assert empty["numel"] == 0 and empty["mean"] is None and empty["std"] is None
    assert empty["histogram"] == {"counts": [0] * 5, "range": [0.0, 1.0]}
    json.dumps([s, one, empty], allow_nan=False)


CASES = {
    "normal": _rand(3, 7, 5, seed=1) * 4 - 2,
    "relu": torch.relu(_rand(1, 6, 28, 28, seed=2)),
    "constant": torch.full((4, 4), 5.0),
    "zero": torch.zeros(10),
    "single": torch.tensor([-3.5]),
    "nan_inf": torch.tensor([1.0, float("nan"), -float("inf"), 4.0, 0.0, float("inf")]),
    "all_nan": torch.full((3,), float("nan")),
    "empty": torch.zeros(0, 4),
    "int": torch.arange(-5, 20).reshape(5, 5),
    "bool": torch.tensor([True, False, True, True]),
    "half": _rand(50, seed=3).half(),
}


def _torch_reference(t: torch.Tensor, bins: int) -> dict:
    """The statistics in plain torch: float64 over the finite values, histc for the counts."""
    x = t.detach().to(torch.float32).reshape(-1)
    finite = x[torch.isfinite(x)]
    out = {
        "numel": x.numel(),
        "nan_count": int(torch.isnan(x).sum()),
        "inf_count": int(torch.isinf(x).sum()),
        "zero_fraction": float((x == 0).sum()) / x.numel() if x.numel() else None,
    }
    if finite.numel() == 0:
        return {**out, "mean": None, "std": None, "min": None, "max": None, "counts": None}
    lo, hi = float(finite.min()), float(finite.max())
    if lo == hi:
        d = max(0.5, abs(lo) * 1e-6)
        lo, hi = lo - d, hi + d
    wide = finite.double()
    return {
        **out,
        "mean": wide.mean().item(),
        "std": wide.std(correction=0).item(),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "range": [lo, hi],
        "counts": torch.histc(wide, bins=bins, min=lo, max=hi).long().tolist(),
    }


def _assert_like_torch(got: dict, t: torch.Tensor, bins: int) -> None:
    want = _torch_reference(t, bins)
    assert got["shape"] == list(t.shape)
    for key in ("numel", "nan_count", "inf_count", "min", "max", "zero_fraction"):
        assert got[key] == want[key], key
    for key in ("mean", "std"):
        assert (got[key] is None) == (want[key] is None), key
        if want[key] is not None:
            assert got[key] == pytest.approx(want[key], rel=1e-6, abs=1e-6), key
    if want["counts"] is None:
        assert got["histogram"]["counts"] == [0] * bins
        return
    assert got["histogram"]["range"] == want["range"]
    assert sum(got["histogram"]["counts"]) == sum(want["counts"])
    # a value on a bin's edge may fall on either side of it
    diff = np.abs(np.array(got["histogram"]["counts"]) - np.array(want["counts"]))
    assert diff.sum() <= 2


BIG = JOIN_MAX_NUMEL + 1000  # described alone, on a view of its own values
LARGE_CASES = {
    "big_normal": _rand(BIG, seed=5) * 3 + 7,
    "big_relu": torch.relu(_rand(4, BIG // 4, seed=6)),
    "big_nan_inf": _rand(BIG, seed=7)
    .index_fill(0, torch.tensor([3, 50, 900]), float("nan"))
    .index_fill(0, torch.tensor([10, 11]), float("inf")),
    "big_all_inf": torch.full((BIG,), -float("inf")),
    "big_huge": _rand(BIG, seed=8) * 3e38 / 5,
    "big_constant": torch.full((BIG,), -2.5),
    "big_offset": _rand(BIG, seed=9) * 1e-3 + 1e4,  # a small spread far from zero
    "big_strided": _rand(300, 200, seed=10).t(),
    "big_half": _rand(BIG, seed=11).half(),
    "big_odd": torch.relu(_rand(BIG + 1, seed=12)),  # its bytes are counted in pairs
}


@pytest.mark.parametrize("name", sorted(CASES) + sorted(LARGE_CASES))
def test_each_statistic_equals_torchs(name: str) -> None:
    """Alone and in a batch with others, every number is torch's (float64 over the finite
    values, ``torch.histc`` for the counts)."""
    t = {**CASES, **LARGE_CASES}[name]
    _assert_like_torch(tensor_stats(t, bins=30), t, 30)
    batch = tensor_stats_many([_rand(5, seed=1), t, torch.zeros(0), _rand(7, seed=2)], bins=30)
    _assert_like_torch(batch[1], t, 30)
    _assert_like_torch(batch[3], _rand(7, seed=2), 30)
    json.dumps(batch, allow_nan=False)
    assert _plain(batch)


@pytest.mark.parametrize("bins", [1, 2, 126, 127, 300])
@pytest.mark.parametrize("size", [BIG, BIG + 1, 40])
def test_any_number_of_bins_equals_histc(bins: int, size: int) -> None:
    t = torch.relu(_rand(size, seed=size))
    _assert_like_torch(tensor_stats(t, bins=bins), t, bins)


def test_min_and_max_find_every_non_finite_value() -> None:
    """The finite check is skipped when min and max are finite: a NaN or ±inf anywhere (first,
    last, alone among zeros) must show in them."""
    for where in (0, 17, BIG - 1):
        for bad in (float("nan"), float("inf"), -float("inf")):
            t = torch.zeros(BIG)
            t[where] = bad
            s = tensor_stats(t)
            assert (s["nan_count"], s["inf_count"]) == ((1, 0) if bad != bad else (0, 1))
            assert s["mean"] == 0.0 and s["histogram"]["counts"][15] == BIG - 1


def test_the_tensor_is_left_as_it_was() -> None:
    t = torch.tensor([1.0, float("nan"), 3.0] * (BIG // 3))
    before = t.clone()
    tensor_stats(t)
    tensor_stats_many([t[:10], t[10:20]])
    assert torch.equal(t.isnan(), before.isnan())
    assert torch.equal(t.nan_to_num(), before.nan_to_num())


def test_without_histogram_the_rest_is_the_same() -> None:
    ts = [_rand(40, seed=1), _rand(BIG, seed=2), torch.zeros(0)]
    plain = tensor_stats_many(ts, histogram=False)
    full = tensor_stats_many(ts)
    for a, b in zip(plain, full, strict=True):
        assert "histogram" not in a
        assert a == {k: v for k, v in b.items() if k != "histogram"}


def _plain(x) -> bool:
    """Only Python's own JSON types (no numpy scalars: fast JSON encoders refuse them)."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return x is None or type(x) in (int, float, str, bool)


def test_the_std_of_huge_values_is_finite() -> None:
    """float64 accumulation: the spread of ±3e38 is finite, where float32 overflows."""
    t = torch.tensor([-3e38, 0.0, 3e38])
    s = tensor_stats(t)
    assert s["std"] == pytest.approx(t.double().std(correction=0).item(), rel=1e-6)
    assert s["mean"] == 0.0 and s["histogram"]["counts"][0] == 1


@pytest.mark.parametrize("numel", [JOIN_MAX_NUMEL - 1, JOIN_MAX_NUMEL + 1])
def test_either_side_of_the_switch_matches_numpy(numel: int) -> None:
    t = _rand(numel, seed=numel) * 3 + 1
    s = tensor_stats(t)
    a = t.numpy().astype(np.float64)
    assert s["mean"] == pytest.approx(a.mean(), rel=1e-5)
    assert s["std"] == pytest.approx(a.std(), rel=1e-5)
    counts, _ = np.histogram(a, bins=30, range=(a.min(), a.max()))
    assert np.abs(np.array(s["histogram"]["counts"]) - counts).sum() <= 2


def test_many_at_once_equals_one_by_one() -> None:
    """The batched route (small CPU tensors together) against tensor_stats of each tensor,
    mixed with tensors it hands on: NaN/inf, empty, large, int and half."""
    tensors = [*CASES.values(), _rand(JOIN_MAX_NUMEL + 5, seed=9), _rand(2, 3, seed=4)]
    many = tensor_stats_many(tensors, bins=12)
    assert len(many) == len(tensors)
    for t, got in zip(tensors, many, strict=True):
        want = tensor_stats(t, bins=12)
        assert got.keys() == want.keys()
        for key in ("shape", "numel", "min", "max", "zero_fraction", "nan_count", "inf_count"):
            assert got[key] == want[key], key
        for key in ("mean", "std"):
            if want[key] is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
        assert got["histogram"]["counts"] == want["histogram"]["counts"]
        assert got["histogram"]["range"] == want["histogram"]["range"]
        assert _plain(got)


def test_many_keeps_the_order_and_handles_none() -> None:
    assert tensor_stats_many([]) == []
    a, b = torch.zeros(3), torch.ones(4)
    first, second = tensor_stats_many([a, b])
    assert (first["max"], second["min"], second["numel"]) == (0.0, 1.0, 4)
