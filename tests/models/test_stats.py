"""Tensor statistics (models/stats.py): against NumPy in float64, and its two routes (NumPy
for small CPU tensors, torch on the device for the rest) against each other."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.stats import (
    NUMPY_MAX_NUMEL,
    stats_numpy,
    stats_torch,
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


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_numpy_and_torch_routes_agree(name: str) -> None:
    t = CASES[name]
    a, b = stats_numpy(t, t, 30), stats_torch(t, t, 30)
    assert a.keys() == b.keys()
    for key in ("shape", "numel", "nan_count", "inf_count", "min", "max", "zero_fraction"):
        assert a[key] == b[key], key
    for key in ("mean", "std"):
        assert (a[key] is None) == (b[key] is None), key
        if a[key] is not None:
            assert a[key] == pytest.approx(b[key], rel=1e-5, abs=1e-6), key
    assert a["histogram"]["range"] == b["histogram"]["range"]
    assert sum(a["histogram"]["counts"]) == sum(b["histogram"]["counts"])
    # histc and the NumPy route may put a value that lies on an edge in neighbouring bins
    diff = np.abs(np.array(a["histogram"]["counts"]) - np.array(b["histogram"]["counts"]))
    assert diff.sum() <= 2
    json.dumps([a, b], allow_nan=False)
    assert _plain(a) and _plain(b)


def _plain(x) -> bool:
    """Only Python's own JSON types (no numpy scalars: fast JSON encoders refuse them)."""
    if isinstance(x, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in x.items())
    if isinstance(x, list):
        return all(_plain(v) for v in x)
    return x is None or type(x) in (int, float, str, bool)


def test_small_cpu_tensors_take_the_numpy_route_and_large_ones_torch(monkeypatch) -> None:
    taken = []
    monkeypatch.setattr("models.stats.stats_numpy", lambda t, x, bins: taken.append("numpy"))
    monkeypatch.setattr("models.stats.stats_torch", lambda t, x, bins: taken.append("torch"))
    tensor_stats(torch.zeros(NUMPY_MAX_NUMEL))
    tensor_stats(torch.zeros(NUMPY_MAX_NUMEL + 1))
    tensor_stats(torch.zeros(5, device="meta"))
    assert taken == ["numpy", "torch", "torch"]


def test_the_numpy_route_keeps_the_std_of_huge_values() -> None:
    """float64 accumulation: the spread of ±3e38 is finite, where float32 overflows."""
    t = torch.tensor([-3e38, 0.0, 3e38])
    s = tensor_stats(t)
    assert s["std"] == pytest.approx(t.double().std(correction=0).item(), rel=1e-6)
    assert s["mean"] == 0.0 and s["histogram"]["counts"][0] == 1


@pytest.mark.parametrize("numel", [NUMPY_MAX_NUMEL - 1, NUMPY_MAX_NUMEL + 1])
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
    tensors = [*CASES.values(), _rand(NUMPY_MAX_NUMEL + 5, seed=9), _rand(2, 3, seed=4)]
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
