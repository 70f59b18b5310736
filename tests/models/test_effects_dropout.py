"""Dropout effects against torch's dropout layers run after torch.manual_seed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.effects.dropout import dropout
from models.errors import LimitError, SpecError


def tutorial_input() -> torch.Tensor:
    return torch.rand(1, 4, 4, generator=torch.Generator().manual_seed(0))


def test_tutorial_passes_equal_torchs_after_manual_seed() -> None:
    x = tutorial_input()
    r = dropout(x, 0.4, passes=2, seed=7)
    torch.manual_seed(7)
    layer = nn.Dropout(p=0.4)
    first, second = layer(x), layer(x)
    assert torch.equal(r["passes"][0]["output"], first)
    assert torch.equal(r["passes"][1]["output"], second)
    assert r["passes_differ"] and not torch.equal(first, second)
    assert r["scale"] == pytest.approx(1 / 0.6)
    assert r["torch_call"] == "nn.Dropout(p=0.4)"


def test_masks_explain_every_output_exactly() -> None:
    x = torch.randn(6, 50, generator=torch.Generator().manual_seed(1))
    p = 0.3
    r = dropout(x, p, passes=4)
    for one in r["passes"]:
        keep = one["mask"].bool()
        out = one["output"]
        assert torch.equal(out, x * (keep.float() / (1 - p)))  # torch's own arithmetic
        assert torch.all(out[~keep] == 0)
        assert torch.allclose(out[keep], x[keep] / (1 - p), rtol=1e-6, atol=1e-7)
        assert one["zero_fraction"] == pytest.approx(1 - float(keep.float().mean()))
    assert r["survivors_scaled"] and r["dropped_are_zero"]
    assert r["max_scaling_error"] < 1e-6


def test_zero_fraction_is_near_p_over_many_elements() -> None:
    x = torch.rand(1000, 1000, generator=torch.Generator().manual_seed(2)) + 0.5  # no zeros
    for p in (0.1, 0.4, 0.5, 0.9):
        r = dropout(x, p, passes=2, seed=3)
        for zf in r["zero_fractions"]:
            assert abs(zf - p) < 0.005  # the binomial std is at most 0.0005 here
        zeros = float((r["passes"][0]["output"] == 0).float().mean())
        assert zeros == pytest.approx(r["zero_fractions"][0])
        kept = r["passes"][0]["output"][r["passes"][0]["mask"].bool()]
        assert torch.allclose(kept.mean(), (x * (1 / (1 - p))).mean(), rtol=0.01)


def test_eval_mode_is_the_identity() -> None:
    x = tutorial_input()
    r = dropout(x, 0.4, passes=3, mode="eval")
    assert r["identity"] and not r["passes_differ"]
    for one in r["passes"]:
        assert torch.equal(one["output"], x)
        assert torch.equal(one["mask"], torch.ones_like(x, dtype=torch.uint8))
    assert r["zero_fractions"] == [0.0, 0.0, 0.0]
    assert r["expected_zero_fraction"] == 0.0
    assert torch.equal(nn.Dropout(0.4).eval()(x), x)


def test_dropout2d_zeroes_whole_channels_as_torch_does() -> None:
    x = torch.rand(4, 8, 3, 3, generator=torch.Generator().manual_seed(5)) + 0.1
    r = dropout(x, 0.5, layer="Dropout2d", passes=2, seed=11)
    torch.manual_seed(11)
    layer = nn.Dropout2d(0.5)
    assert torch.equal(r["passes"][0]["output"], layer(x))
    assert torch.equal(r["passes"][1]["output"], layer(x))
    mask = r["passes"][0]["mask"]
    per_channel = mask.reshape(4, 8, 9)
    assert torch.equal(per_channel.min(-1).values, per_channel.max(-1).values)


def test_the_callers_random_state_is_left_alone() -> None:
    torch.manual_seed(5)
    want = torch.rand(3)
    torch.manual_seed(5)
    dropout(tutorial_input(), 0.5, passes=3, seed=1)
    assert torch.equal(torch.rand(3), want)


@pytest.mark.parametrize("p", [1.0, 1.2, -0.1, float("nan")])
def test_p_outside_zero_one_is_refused(p: float) -> None:
    with pytest.raises(SpecError) as err:
        dropout(tutorial_input(), p)
    assert "[0, 1)" in err.value.message


def test_p_zero_keeps_everything() -> None:
    x = tutorial_input()
    r = dropout(x, 0.0)
    assert r["identity"] and r["zero_fractions"] == [0.0, 0.0]


@pytest.mark.parametrize(
    ("layer", "shape", "phrase"),
    [("Dropout2d", (3, 4, 4), "use Dropout1d"), ("Dropout1d", (2, 3, 4, 4), "(N, C, L)")],
)
def test_channel_dropout_needs_its_layout(layer: str, shape, phrase: str) -> None:
    with pytest.raises(SpecError) as err:
        dropout(torch.zeros(shape), 0.5, layer=layer)
    assert phrase in err.value.message


def test_passes_times_elements_over_the_limit_is_refused() -> None:
    with pytest.raises(LimitError):
        dropout(torch.zeros(100, 100), 0.5, passes=100, max_elements=100_000)
