"""The Linear layer by hand against nn.Linear itself."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.build import build
from models.effects.linear import by_hand, linear_of, seeded_linear
from models.errors import SpecError
from models.presets import get_preset


def test_tutorial_linear_3_2_worked_by_hand_equals_y() -> None:
    torch.manual_seed(0)
    ref = nn.Linear(3, 2)
    lin = seeded_linear(3, 2, seed=0)
    assert torch.equal(lin.weight, ref.weight) and torch.equal(lin.bias, ref.bias)
    x = torch.rand(1, 3, generator=torch.Generator().manual_seed(0))
    r = by_hand(lin.weight, lin.bias, x)
    y = ref(x).detach()
    assert torch.equal(r["y"], y)
    assert torch.allclose(r["y_by_hand"], y, atol=1e-6)
    assert r["max_abs_diff"] < 1e-6
    assert [(s["row"], s["out"]) for s in r["steps"]] == [(0, 0), (0, 1)]
    for s in r["steps"]:
        w, b = ref.weight[s["out"]].detach(), float(ref.bias.detach()[s["out"]])
        assert s["x"] == x[0].double().tolist()
        assert s["w"] == w.double().tolist()
        assert s["products"] == pytest.approx([a * c for a, c in zip(s["x"], s["w"], strict=True)])
        assert s["sum"] == pytest.approx(sum(s["products"]))
        assert s["bias"] == b
        assert s["value"] == pytest.approx(s["sum"] + b)
        assert s["value"] == pytest.approx(float(y[0, s["out"]]), abs=1e-6)
        assert s["torch"] == float(y[0, s["out"]])
    assert not r["truncated"]


def test_batched_input_without_bias() -> None:
    lin = seeded_linear(4, 3, bias=False, seed=2)
    x = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(1))
    r = by_hand(lin.weight, None, x)
    assert r["bias"] is None and r["rows"] == 10
    assert torch.allclose(r["y_by_hand"], lin(x).detach(), atol=1e-6)
    assert all(s["bias"] == 0.0 for s in r["steps"])
    assert len(r["steps"]) == 30


def test_long_worked_lists_are_truncated_and_outputs_can_be_chosen() -> None:
    lin = seeded_linear(100, 50)
    x = torch.rand(1, 100)
    r = by_hand(lin.weight, lin.bias, x)
    assert r["truncated"] and len(r["steps"]) == 40  # 40 × 100 products ≤ 4,096
    assert torch.allclose(r["y_by_hand"], lin(x).detach(), atol=1e-5)
    some = by_hand(lin.weight, lin.bias, x, outputs=[49, 3])
    assert [s["out"] for s in some["steps"]] == [49, 3] and not some["truncated"]


@pytest.mark.parametrize(
    ("x", "kw", "phrase"),
    [
        (torch.zeros(1, 4), {}, "takes x with 3 values in its last dim; x is 1×4"),
        (torch.zeros(65, 3), {}, "at most 64"),
        (torch.zeros(1, 3), {"outputs": [2]}, "0…1"),
    ],
)
def test_bad_inputs_are_refused(x, kw, phrase: str) -> None:
    lin = seeded_linear(3, 2)
    with pytest.raises(SpecError) as err:
        by_hand(lin.weight, lin.bias, x, **kw)
    assert phrase in err.value.message


def test_a_models_linear_layer() -> None:
    model = build(get_preset("lenet5").spec, seed=0).model
    assert linear_of(model, "fc3") is model.fc3
    x = torch.rand(1, 84)
    r = by_hand(model.fc3.weight, model.fc3.bias, x)
    assert torch.allclose(r["y_by_hand"], model.fc3(x).detach(), atol=1e-6)
    with pytest.raises(SpecError) as err:
        linear_of(model, "conv1")
    assert err.value.code == "invalid_arg" and "Conv2d, not a Linear" in err.value.message
    assert "fc1, fc2, fc3" in err.value.message
    with pytest.raises(SpecError) as err:
        linear_of(model, "nope")
    assert err.value.code == "unknown_layer"
