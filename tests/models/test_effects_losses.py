"""Loss effects against every torch.nn loss class, gradients against autograd."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.effects.losses import LOSSES, loss
from models.errors import LimitError, SpecError

g = torch.Generator().manual_seed(0)
LOGITS = torch.randn(4, 3, generator=g)
CLASSES = torch.tensor([0, 2, 1, 2])
PROBS = F.softmax(torch.randn(4, 3, generator=g), dim=1)
PRED = torch.randn(2, 5, generator=g)
TRUE = torch.randn(2, 5, generator=g)
P01 = torch.rand(2, 5, generator=g).clamp(0.05, 0.95)
Y01 = (torch.rand(2, 5, generator=g) > 0.5).float()

# (name, our kwargs, torch module kwargs, input, target)
CASES = [
    ("MSELoss", {}, {}, PRED, TRUE),
    ("L1Loss", {}, {}, PRED, TRUE),
    ("SmoothL1Loss", {"beta": 0.5}, {"beta": 0.5}, PRED, TRUE),
    ("HuberLoss", {"delta": 0.7}, {"delta": 0.7}, PRED, TRUE),
    ("CrossEntropyLoss", {}, {}, LOGITS, CLASSES),
    (
        "CrossEntropyLoss",
        {"label_smoothing": 0.1, "weight": [1.0, 2.0, 0.5]},
        {"label_smoothing": 0.1, "weight": torch.tensor([1.0, 2.0, 0.5])},
        LOGITS,
        CLASSES,
    ),
    ("CrossEntropyLoss", {}, {}, LOGITS, PROBS),
    ("NLLLoss", {}, {}, F.log_softmax(LOGITS, 1), CLASSES),
    (
        "NLLLoss",
        {"weight": [0.2, 1.0, 3.0]},
        {"weight": torch.tensor([0.2, 1.0, 3.0])},
        F.log_softmax(LOGITS, 1),
        CLASSES,
    ),
    ("BCELoss", {}, {}, P01, Y01),
    ("BCEWithLogitsLoss", {}, {}, PRED, Y01),
    (
        "BCEWithLogitsLoss",
        {"pos_weight": [2.0] * 5},
        {"pos_weight": torch.full((5,), 2.0)},
        PRED,
        Y01,
    ),
    ("KLDivLoss", {}, {}, F.log_softmax(LOGITS, 1), PROBS),
    (
        "KLDivLoss",
        {"log_target": True},
        {"log_target": True},
        F.log_softmax(LOGITS, 1),
        PROBS.log(),
    ),
]


def torch_value(name: str, kw: dict, x: torch.Tensor, t: torch.Tensor, reduction: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss warns about reduction='mean'
        return getattr(nn, name)(reduction=reduction, **kw)(x, t)


def test_every_loss_is_covered() -> None:
    assert {c[0] for c in CASES} == set(LOSSES)


@pytest.mark.parametrize(("name", "ours", "theirs", "x", "t"), CASES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_values_and_gradients_equal_torchs(name, ours, theirs, x, t, reduction) -> None:
    r = loss(name, x, t.float(), reduction=reduction, **ours)
    want = torch_value(name, theirs, x, t, reduction)
    if reduction == "none":
        assert torch.allclose(r["per_element"], want, atol=1e-6)
        assert r["value"] == pytest.approx(float(want.sum()), abs=1e-5)
    else:
        assert r["value"] == pytest.approx(float(want), abs=1e-6)
    assert r["mean"] == pytest.approx(float(torch_value(name, theirs, x, t, "mean")), abs=1e-6)
    assert r["sum"] == pytest.approx(float(torch_value(name, theirs, x, t, "sum")), abs=1e-5)
    assert torch.allclose(r["per_element"], torch_value(name, theirs, x, t, "none"), atol=1e-6)
    leaf = x.clone().requires_grad_(True)
    torch_value(name, theirs, leaf, t, reduction).sum().backward()
    assert torch.allclose(r["grad"], leaf.grad, atol=1e-6)


def test_kl_batchmean_and_the_target_kinds() -> None:
    x, t = F.log_softmax(LOGITS, 1), PROBS
    r = loss("KLDivLoss", x, t, reduction="batchmean")
    assert r["value"] == pytest.approx(float(nn.KLDivLoss(reduction="batchmean")(x, t)))
    assert r["batchmean"] == pytest.approx(r["sum"] / 4)
    assert loss("CrossEntropyLoss", LOGITS, CLASSES.float())["target_kind"] == "indices"
    assert loss("CrossEntropyLoss", LOGITS, PROBS)["target_kind"] == "probabilities"
    assert loss("MSELoss", PRED, TRUE)["target_kind"] == "values"


def test_cross_entropy_probabilities_and_unbatched_input() -> None:
    r = loss("CrossEntropyLoss", LOGITS, CLASSES.float())
    assert torch.allclose(r["probabilities"], F.softmax(LOGITS, 1))
    one = loss("CrossEntropyLoss", LOGITS[0], torch.tensor(2.0))
    assert one["value"] == pytest.approx(float(F.cross_entropy(LOGITS[0], torch.tensor(2))))


def test_curve_is_the_loss_as_one_prediction_moves() -> None:
    r = loss(
        "MSELoss", PRED, TRUE, curve_index=[1, 2], curve_min=-2.0, curve_max=2.0, curve_points=5
    )
    c = r["curve"]
    assert c["index"] == [1, 2]
    assert c["current"] == pytest.approx(float(PRED[1, 2]))
    assert torch.allclose(c["x"], torch.linspace(-2, 2, 5))
    for v, got in zip(c["x"], c["loss"], strict=True):
        moved = PRED.clone()
        moved[1, 2] = v
        assert got == pytest.approx(float(F.mse_loss(moved, TRUE)), abs=1e-6)
    default = loss("BCELoss", P01, Y01)["curve"]
    assert float(default["x"][0]) == 0.0 and float(default["x"][-1]) == 1.0
    assert torch.isfinite(default["loss"]).all()


@pytest.mark.parametrize(
    ("name", "x", "t", "phrase"),
    [
        ("MSELoss", PRED, TRUE[0], "needs a target of the input's shape 2×5; the target is 5"),
        ("CrossEntropyLoss", LOGITS, CLASSES[:2].float(), "class indices of shape 4"),
        ("CrossEntropyLoss", LOGITS, CLASSES.float(), None),
        ("NLLLoss", LOGITS, PROBS, "class indices of shape 4"),
        ("CrossEntropyLoss", LOGITS, torch.tensor([0.0, 3.0, 1.0, 1.0]), "0…2"),
        ("CrossEntropyLoss", LOGITS, torch.tensor([0.5, 1.0, 1.0, 1.0]), "whole numbers"),
        ("BCELoss", PRED, Y01, "BCEWithLogitsLoss"),
    ],
)
def test_bad_targets_are_refused(name, x, t, phrase) -> None:
    if phrase is None:
        loss(name, x, t)  # the valid control case
        return
    with pytest.raises(SpecError) as err:
        loss(name, x, t)
    assert phrase in err.value.message


def test_mismatched_shapes_carry_the_expected_shape() -> None:
    with pytest.raises(SpecError) as err:
        loss("CrossEntropyLoss", LOGITS, torch.zeros(4, 2))
    assert err.value.code == "shape_mismatch"
    assert err.value.detail == {"expected": [[4], [4, 3]], "actual": [4, 2]}


@pytest.mark.parametrize(
    ("kw", "phrase"),
    [
        ({"weight": [1.0, 2.0]}, "one value per class (3)"),
        ({"reduction": "batchmean"}, "KLDivLoss's"),
        ({"curve_index": [9, 0]}, "curve_index"),
        ({"curve_min": 1.0, "curve_max": 0.0}, "below"),
    ],
)
def test_bad_options_are_refused(kw, phrase: str) -> None:
    with pytest.raises(SpecError) as err:
        loss("CrossEntropyLoss", LOGITS, CLASSES.float(), **kw)
    assert phrase in err.value.message


def test_curve_cost_over_the_limit_is_refused() -> None:
    with pytest.raises(LimitError):
        loss(
            "MSELoss",
            torch.zeros(100, 100),
            torch.zeros(100, 100),
            curve_points=2001,
            max_elements=1_000_000,
        )
