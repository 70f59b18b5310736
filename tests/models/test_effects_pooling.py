"""Pooling effects against torch's pooling modules, windows and winners recomputed by hand."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from models.effects.pooling import output_length, pool
from models.errors import LimitError, SpecError


def tutorial_input() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(1, 6, 6)


def test_tutorial_maxpool_gives_the_four_quadrant_maxima() -> None:
    x = tutorial_input()
    r = pool(x, "max", kernel_size=3)
    assert torch.equal(r["output"], nn.MaxPool2d(3)(x))
    assert r["output"].shape == (1, 2, 2)
    by_hand = torch.tensor(
        [
            [x[0, :3, :3].max(), x[0, :3, 3:].max()],
            [x[0, 3:, :3].max(), x[0, 3:, 3:].max()],
        ]
    )
    assert torch.equal(r["output"][0], by_hand)
    assert r["torch_call"] == "nn.MaxPool2d(kernel_size=3)(x)"
    assert [c["indices"] for c in r["windows"][0]["cells"]] == [[0, 1, 2], [3, 4, 5]]
    assert [c["indices"] for c in r["windows"][1]["cells"]] == [[0, 1, 2], [3, 4, 5]]
    flat = x.reshape(1, 36)
    assert torch.equal(flat.gather(1, r["winners"].reshape(1, 4)).reshape(1, 2, 2), r["output"])


def torch_pool(x: torch.Tensor, op: str, dims: int, **kw) -> torch.Tensor:
    """The oracle: torch's own module for the op (min pooling as -max_pool(-x))."""
    if op == "max":
        return getattr(nn, f"MaxPool{dims}d")(**kw)(x)
    if op == "min":
        return -getattr(nn, f"MaxPool{dims}d")(**kw)(-x)
    if op == "avg":
        return getattr(nn, f"AvgPool{dims}d")(**kw)(x)
    cls = "AdaptiveAvgPool" if op == "adaptive_avg" else "AdaptiveMaxPool"
    return getattr(nn, f"{cls}{dims}d")(**kw)(x)


def check_windows(x: torch.Tensor, r: dict, dims: int) -> None:
    """Every output cell recomputed from the window the result reports for it."""
    planes = x.reshape(-1, *x.shape[-dims:])
    out = r["output"].reshape(-1, *r["output"].shape[-dims:])
    wins = None if r["winners"] is None else r["winners"].reshape(out.shape)
    axes = [axis["cells"] for axis in r["windows"]]
    width = x.shape[-1]
    for pos in itertools.product(*(range(len(cells)) for cells in axes)):
        idx = [cells[p]["indices"] for cells, p in zip(axes, pos, strict=True)]
        cells = list(itertools.product(*idx))
        for plane in range(planes.shape[0]):
            values = torch.stack([planes[plane][c] for c in cells])
            got = out[plane][pos]
            if r["op"] in ("max", "adaptive_max"):
                assert got == values.max()
            elif r["op"] == "min":
                assert got == values.min()
            elif r["op"] == "adaptive_avg":
                assert torch.allclose(got, values.mean(), atol=1e-6)
            else:
                divisor = r["divisor"][pos]
                assert torch.allclose(got, values.sum() / divisor, atol=1e-6)
            if wins is not None:
                w = int(wins[plane][pos])
                coords = (w // width, w % width) if dims == 2 else (w,)
                assert coords in cells
                assert planes[plane][coords] == got


CASES = [
    ("max", 2, {"kernel_size": 3}),
    ("max", 2, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("max", 2, {"kernel_size": [2, 3], "stride": [1, 2], "dilation": [2, 1]}),
    ("min", 2, {"kernel_size": 2}),
    ("min", 1, {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}),
    ("avg", 2, {"kernel_size": 3, "stride": 2, "padding": 1}),
    ("avg", 2, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ("avg", 1, {"kernel_size": 2, "stride": 2, "padding": 1, "ceil_mode": True}),
    ("max", 1, {"kernel_size": 2}),
]


@pytest.mark.parametrize(("op", "dims", "kw"), CASES)
def test_pooling_matches_torch_and_windows_explain_every_cell(op: str, dims: int, kw) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn((2, 3, 7, 9) if dims == 2 else (2, 3, 11), generator=g)
    r = pool(x, op, dims=dims, **kw)
    torch_kw = {k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()}
    assert torch.equal(r["output"], torch_pool(x, op, dims, **torch_kw))
    check_windows(x, r, dims)


@pytest.mark.parametrize("op", ["adaptive_avg", "adaptive_max"])
@pytest.mark.parametrize(("dims", "shape", "size"), [(2, (3, 7, 5), [3, 2]), (1, (2, 10), 4)])
def test_adaptive_pooling(op: str, dims: int, shape, size) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    r = pool(x, op, dims=dims, output_size=size)
    want = torch_pool(x, op, dims, output_size=tuple(size) if isinstance(size, list) else size)
    assert torch.allclose(r["output"], want)
    check_windows(x, r, dims)


def test_output_length_is_torchs() -> None:
    x = torch.zeros(1, 1, 13)
    for k, s, p, d, ceil in itertools.product(range(1, 5), range(1, 4), range(3), (1, 2), (0, 1)):
        if p > k // 2 or d * (k - 1) + 1 > 13 + 2 * p:
            continue
        want = nn.MaxPool1d(k, s, p, d, ceil_mode=bool(ceil))(x).shape[-1]
        assert output_length(13, k, s, p, d, bool(ceil)) == want


def test_kernel_larger_than_padded_input_is_refused_with_both_sizes() -> None:
    with pytest.raises(SpecError) as err:
        pool(tutorial_input(), "max", kernel_size=7)
    assert err.value.code == "kernel_too_large"
    assert "padded input is only 6" in err.value.message
    assert "kernel spans 7" in err.value.message
    with pytest.raises(SpecError) as err:
        pool(tutorial_input(), "max", kernel_size=4, dilation=3, padding=1)
    assert "spans 10" in err.value.message and "only 8" in err.value.message


@pytest.mark.parametrize(
    ("kw", "phrase"),
    [
        ({"kernel_size": 3, "padding": 2}, "at most half the kernel"),
        ({"kernel_size": 2, "dilation": 2, "op": "avg"}, "no dilation"),
        ({"kernel_size": [2, 2, 2]}, "one per spatial dim"),
        ({"kernel_size": None}, "needs kernel_size"),
        ({"op": "adaptive_avg"}, "needs output_size"),
        ({"kernel_size": 2, "dims": 1, "x": torch.zeros(6)}, "takes (N, C, L) or (C, L)"),
    ],
)
def test_bad_arguments_are_refused(kw, phrase: str) -> None:
    kw = dict(kw)
    x = kw.pop("x", tutorial_input())
    with pytest.raises(SpecError) as err:
        pool(x, kw.pop("op", "max"), **kw)
    assert phrase in err.value.message


def test_output_over_the_limit_is_refused() -> None:
    with pytest.raises(LimitError):
        pool(torch.zeros(1, 4, 4), "adaptive_max", output_size=100, max_elements=1000)


def test_pooling_is_refused_over_the_work_limit_as_a_model_layer_would_be():
    """MaxPool2d(100, stride=1) on 500×500 held the worker seconds: the effects lab counts its
    window elements with the model cost table (models.cost.WINDOW) against max_work."""
    from models.cost import WINDOW
    from models.errors import LimitError
    from models.limits import DEFAULT_LIMITS

    x = torch.zeros(1, 1, 500, 500)
    with pytest.raises(LimitError) as err:
        pool(x, "max", kernel_size=100, stride=1, max_work=DEFAULT_LIMITS.max_work)
    assert err.value.detail["actual"] == 401 * 401 * 100 * 100 * WINDOW
    assert err.value.detail["limit_key"] == "max_work"
    with pytest.raises(LimitError):
        pool(x, "adaptive_max", output_size=499, max_work=10**6)
    # the tutorial's case is far below it
    small = pool(torch.rand(1, 1, 6, 6), "max", kernel_size=3, max_work=DEFAULT_LIMITS.max_work)
    assert small["output"].shape == (1, 1, 2, 2)
