"""Experiment inputs: seeded random, constant, given, and a model layer's activation."""

from __future__ import annotations

import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from models.build import build
from models.effects.source import (
    ConstantSource,
    ModelSource,
    RandomSource,
    Source,
    TensorSource,
    make_tensor,
    model_activation,
    resolve,
)
from models.errors import LimitError, SpecError
from models.limits import Limits
from models.presets import get_preset

LIMITS = Limits(max_input_elements=10_000)
SOURCE = TypeAdapter(Source)


def test_random_sources_draw_torchs_numbers() -> None:
    src = RandomSource(distribution="uniform", shape=[1, 6, 6], seed=0)
    torch.manual_seed(0)
    assert torch.equal(make_tensor(src, max_elements=100), torch.rand(1, 6, 6))
    normal = RandomSource(shape=[3, 4], seed=5, mean=2.0, std=0.5)
    torch.manual_seed(5)
    assert torch.equal(make_tensor(normal, max_elements=100), 2.0 + 0.5 * torch.randn(3, 4))


def test_constant_and_given_sources() -> None:
    assert torch.equal(
        make_tensor(ConstantSource(value=1.5, shape=[2, 2]), max_elements=10),
        torch.full((2, 2), 1.5),
    )
    given = TensorSource(data=[[1, 2], [3, 4]])
    assert torch.equal(make_tensor(given, max_elements=10), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_sources_parse_from_json_by_kind() -> None:
    assert isinstance(SOURCE.validate_python({"kind": "random", "shape": [2]}), RandomSource)
    assert isinstance(SOURCE.validate_python({"kind": "tensor", "data": [1]}), TensorSource)
    model = SOURCE.validate_python({"kind": "model", "model_id": "m1", "layer": "conv1"})
    assert isinstance(model, ModelSource) and model.mode == "eval"
    with pytest.raises(ValidationError):
        SOURCE.validate_python({"kind": "random", "shape": [0]})
    with pytest.raises(ValidationError):
        SOURCE.validate_python({"kind": "random"})


def test_sizes_over_the_limit_are_refused_before_allocation() -> None:
    with pytest.raises(LimitError):
        make_tensor(RandomSource(shape=[100_000, 100_000]), max_elements=1_000_000)
    with pytest.raises(LimitError):
        make_tensor(TensorSource(data=[0.0] * 11), max_elements=10)


def test_a_model_layers_activation() -> None:
    built = build(get_preset("lenet5").spec, seed=0)
    src = ModelSource(model_id="m", layer="pool1", inputs={"x": {"kind": "random", "seed": 3}})
    got = model_activation(built, src, limits=LIMITS)
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    m = built.model
    with torch.no_grad():
        want = m.pool1(m.relu1(m.conv1(x)))
    assert torch.equal(got, want)
    default = model_activation(built, ModelSource(model_id="m", layer="conv1"), limits=LIMITS)
    x0 = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(default, m.conv1(x0))
    assert torch.equal(resolve(src, built=built, limits=LIMITS), got)


def test_train_mode_leaves_the_model_as_it_was() -> None:
    spec = {
        "inputs": {"x": {"shape": [8, 3]}},
        "layers": [
            {"name": "bn", "type": "BatchNorm1d", "args": {"num_features": 3}},
            {"name": "drop", "type": "Dropout", "args": {"p": 0.5}},
        ],
    }
    built = build(spec, seed=0)
    built.model.eval()  # as the worker keeps its models
    before = {k: v.clone() for k, v in built.model.state_dict().items()}
    src = ModelSource(model_id="m", layer="drop", mode="train", seed=1)
    out = model_activation(built, src, limits=LIMITS)
    assert float((out == 0).float().mean()) > 0  # dropout was on
    after = built.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not any(m.training for m in built.model.modules())


@pytest.mark.parametrize(
    ("src", "code"),
    [
        (ModelSource(model_id="m", layer="nope"), "unknown_layer"),
        (
            ModelSource(model_id="m", layer="conv1", inputs={"y": {"kind": "random"}}),
            "invalid_input",
        ),
    ],
)
def test_bad_model_sources(src: ModelSource, code: str) -> None:
    built = build(get_preset("lenet5").spec, seed=0)
    with pytest.raises(SpecError) as err:
        model_activation(built, src, limits=LIMITS)
    assert err.value.code == code


def test_a_model_source_needs_its_model() -> None:
    with pytest.raises(SpecError):
        resolve(ModelSource(model_id="m", layer="conv1"), limits=LIMITS)


def test_an_activation_over_the_limit_is_refused() -> None:
    built = build(get_preset("lenet5").spec, seed=0)
    with pytest.raises(LimitError):
        model_activation(
            built, ModelSource(model_id="m", layer="conv1"), limits=Limits(max_input_elements=2000)
        )
