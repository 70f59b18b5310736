"""Normalization effects against torch's norm layers driven by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.effects.normalization import normalize
from models.errors import LimitError, SpecError


def tutorial_data() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(1, 4, 4) * 20 + 5


def seeded_rand(*shape: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0))


def test_tutorial_batchnorm_moves_the_mean_from_about_15_to_about_0() -> None:
    x = tutorial_data()
    r = normalize(seeded_rand(1, 4, 4), "BatchNorm1d", scale=20.0, offset=5.0)
    assert torch.equal(r["input"], x)  # rand(1, 4, 4)·20 + 5, bit for bit
    bn = nn.BatchNorm1d(4)
    assert torch.allclose(r["output"], bn(x), atol=1e-6)
    assert 5 < float(x.mean()) < 25 and abs(float(x.mean()) - 15) < 3
    assert abs(float(r["output"].mean())) < 1e-5
    assert r["before_stats"]["mean"] == pytest.approx(float(x.mean()), abs=1e-5)
    assert abs(r["after_stats"]["mean"]) < 1e-5
    assert sum(r["after_stats"]["histogram"]["counts"]) == 16
    # a large sample of the same data: the mean is 15 to within a few hundredths
    big = normalize(seeded_rand(1, 4, 20_000), scale=20.0, offset=5.0)
    assert abs(float(big["input"].mean()) - 15) < 0.1
    assert abs(float(big["output"].mean())) < 1e-4


def test_per_channel_and_batch_statistics() -> None:
    x = tutorial_data()
    r = normalize(x)
    assert torch.allclose(r["channels_before"]["mean"], x.mean((0, 2)))
    assert torch.allclose(r["channels_before"]["std"], x.std((0, 2), correction=0))
    assert torch.allclose(r["channels_after"]["mean"], torch.zeros(4), atol=1e-5)
    stats = r["batch_stats"]
    assert stats["count"] == 4
    assert torch.allclose(stats["var"], x.var((0, 2), correction=0))
    by_hand = (x - stats["mean"][None, :, None]) / torch.sqrt(stats["var"][None, :, None] + 1e-5)
    assert torch.allclose(r["train_output"], by_hand, atol=1e-5)


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("steps", [0, 1, 5])
def test_running_stats_after_k_steps_equal_torchs(momentum, steps: int) -> None:
    x = tutorial_data()
    r = normalize(x, steps=steps, momentum=momentum, mode="eval")
    bn = nn.BatchNorm1d(4, momentum=momentum)
    history = [bn.running_mean.clone()]
    for _ in range(steps):
        bn(x)
        history.append(bn.running_mean.clone())
    run = r["running"]
    assert torch.allclose(run["mean"], bn.running_mean)
    assert torch.allclose(run["var"], bn.running_var)
    assert run["num_batches_tracked"] == int(bn.num_batches_tracked) == steps
    assert torch.allclose(run["history_mean"], torch.stack(history))
    assert run["history_var"].shape == (steps + 1, 4)
    bn.eval()
    assert torch.allclose(r["output"], bn(x), atol=1e-5)
    assert torch.equal(r["output"], r["eval_output"])


def test_running_mean_follows_the_momentum_update_by_hand() -> None:
    x = tutorial_data()
    m, k = 0.1, 3
    r = normalize(x, steps=k, momentum=m)
    mean = x.mean((0, 2))
    var_unbiased = x.var((0, 2), correction=1)
    assert torch.allclose(r["running"]["mean"], (1 - (1 - m) ** k) * mean, atol=1e-5)
    want_var = (1 - m) ** k * 1.0 + (1 - (1 - m) ** k) * var_unbiased
    assert torch.allclose(r["running"]["var"], want_var, atol=1e-4)


LAYERS = [
    ("BatchNorm2d", (2, 3, 4, 4), {}, lambda c: nn.BatchNorm2d(c)),
    ("LayerNorm", (2, 3, 5), {"normalized_dims": 2}, lambda c: nn.LayerNorm([3, 5])),
    ("GroupNorm", (2, 4, 5), {"num_groups": 2}, lambda c: nn.GroupNorm(2, 4)),
    ("InstanceNorm1d", (2, 3, 6), {}, lambda c: nn.InstanceNorm1d(3)),
    (
        "InstanceNorm2d",
        (2, 3, 4, 4),
        {"affine": True, "track_running_stats": True},
        lambda c: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
    ),
]


@pytest.mark.parametrize(("layer", "shape", "kw", "make"), LAYERS)
def test_every_layer_matches_torch_in_both_modes(layer, shape, kw, make) -> None:
    x = torch.randn(shape, generator=torch.Generator().manual_seed(3)) * 4 + 2
    r = normalize(x, layer, steps=2, **kw)
    ref = make(shape[1])
    assert torch.allclose(r["train_output"], ref.train()(x), atol=1e-5)
    ref.train()(x)  # two training calls in all, as steps=2
    assert torch.allclose(r["eval_output"], ref.eval()(x), atol=1e-5)
    if getattr(ref, "running_mean", None) is not None:
        assert torch.allclose(r["running"]["mean"], ref.running_mean)
    else:
        assert r["running"] is None


def test_layernorm_without_running_stats_is_the_same_in_eval() -> None:
    x = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(4))
    r = normalize(x, "LayerNorm", steps=3)
    assert torch.equal(r["train_output"], r["eval_output"])
    assert torch.allclose(r["batch_stats"]["mean"], x.mean(-1))


def test_affine_weight_and_bias_are_used() -> None:
    x = tutorial_data()
    r = normalize(x, weight=[1.0, 2.0, 3.0, 4.0], bias=[0.0, -1.0, 1.0, 0.5])
    bn = nn.BatchNorm1d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))
        bn.bias.copy_(torch.tensor([0.0, -1.0, 1.0, 0.5]))
    assert torch.allclose(r["output"], bn(x), atol=1e-5)
    assert torch.equal(r["weight"], bn.weight.detach())
    assert torch.allclose(r["channels_after"]["mean"], bn.bias.detach(), atol=1e-5)


def test_one_value_per_channel_works_in_eval_only() -> None:
    x = torch.randn(1, 4)
    r = normalize(x, mode="eval", steps=0)
    assert r["train_output"] is None
    assert torch.allclose(r["output"], x / torch.sqrt(torch.tensor(1 + 1e-5)))
    with pytest.raises(SpecError, match="more than one value per statistic"):
        normalize(x, mode="train")


@pytest.mark.parametrize(
    ("x", "kw", "phrase"),
    [
        (torch.zeros(2, 3, 4), {"layer": "BatchNorm2d"}, "takes (N, C, H, W)"),
        (torch.zeros(2, 3, 4), {"layer": "GroupNorm", "num_groups": 2}, "must divide"),
        (torch.zeros(2, 4, 4), {"weight": [1.0, 2.0]}, "needs 4 values"),
        (torch.zeros(2, 4, 4), {"layer": "InstanceNorm1d", "weight": [1.0] * 4}, "affine"),
        (torch.zeros(2, 4, 4), {"momentum": 2.0}, "momentum"),
    ],
)
def test_bad_requests_are_refused(x, kw, phrase: str) -> None:
    with pytest.raises(SpecError) as err:
        normalize(x, **kw)
    assert phrase in err.value.message


def test_steps_times_elements_over_the_limit_is_refused() -> None:
    with pytest.raises(LimitError):
        normalize(torch.zeros(2, 4, 100), steps=1000, max_elements=10_000)
