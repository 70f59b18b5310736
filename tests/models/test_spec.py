"""models.spec: parsing untrusted JSON, wiring defaults, names, outputs, the resolved spec."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from torch import nn

from models.build import infer
from models.errors import LimitError, SpecError
from models.spec import RESERVED, Spec, parse_spec


def _two_inputs(layers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    inputs = {"a": {"shape": [2, 4]}, "b": {"shape": [2, 4]}}
    return {"name": "Merge", "inputs": inputs, "layers": layers, **extra}


# -- wiring -------------------------------------------------------------------------------
def test_default_wiring_is_first_input_then_previous_layer(lenet: dict[str, Any]) -> None:
    spec = parse_spec(lenet)
    assert spec.layer_inputs(0) == ["x"]
    names = [layer["name"] for layer in lenet["layers"]]
    for i in range(1, len(names)):
        assert spec.layer_inputs(i) == [names[i - 1]]
    assert spec.output_names() == ["fc3"]


def test_first_layer_reads_the_first_of_several_inputs() -> None:
    spec = parse_spec(_two_inputs([{"name": "relu", "type": "ReLU"}]))
    assert spec.layer_inputs(0) == ["a"]


def test_explicit_inputs_for_merges_and_two_input_layers() -> None:
    auto_bilinear = {"in1_features": "auto", "in2_features": "auto", "out_features": 2}
    layers = [
        {"name": "fa", "type": "Linear", "args": {"in_features": 4, "out_features": 3}},
        {"name": "fb", "type": "Linear", "args": {"in_features": 4, "out_features": 3}},
        {"name": "sum", "type": "Add", "inputs": ["fa", "fb"]},
        {"name": "cat", "type": "Concat", "args": {"dim": 1}, "inputs": ["sum", "a"]},
        {"name": "bil", "type": "Bilinear", "args": auto_bilinear, "inputs": ["fa", "cat"]},
        {"name": "relu", "type": "ReLU"},
    ]
    layers[1]["inputs"] = ["b"]
    spec = parse_spec(_two_inputs(layers))
    assert [spec.layer_inputs(i) for i in range(len(layers))] == [
        ["a"],
        ["b"],
        ["fa", "fb"],
        ["sum", "a"],
        ["fa", "cat"],
        ["bil"],
    ]
    inference = infer(spec)
    assert [info.output_shape for info in inference.layers] == [
        [2, 3],
        [2, 3],
        [2, 3],
        [2, 7],
        [2, 2],
        [2, 2],
    ]
    assert inference.layers[4].args == {"in1_features": 3, "in2_features": 7, "out_features": 2}
    assert [info.inputs for info in inference.layers] == [spec.layer_inputs(i) for i in range(6)]


def test_transformer_reads_src_and_tgt() -> None:
    data = {
        "name": "T",
        "inputs": {"src": {"shape": [10, 1, 16]}, "tgt": {"shape": [20, 1, 16]}},
        "layers": [
            {
                "name": "transformer",
                "type": "Transformer",
                "args": {
                    "d_model": 16,
                    "nhead": 2,
                    "num_encoder_layers": 1,
                    "num_decoder_layers": 1,
                },
                "inputs": ["src", "tgt"],
            }
        ],
    }
    inference = infer(data)
    assert inference.outputs == {"transformer": [20, 1, 16]}
    data["layers"][0]["inputs"] = ["tgt", "src"]
    assert infer(data).outputs == {"transformer": [10, 1, 16]}


def test_outputs_name_several_layers_and_inputs(lenet: dict[str, Any]) -> None:
    lenet["outputs"] = ["flat", "fc3", "x"]
    spec = parse_spec(lenet)
    assert spec.output_names() == ["flat", "fc3", "x"]
    assert infer(spec).outputs == {"flat": [1, 576], "fc3": [1, 10], "x": [1, 1, 32, 32]}


# -- the resolved spec --------------------------------------------------------------------
def test_resolved_spec_fills_auto_and_adds_nothing(lenet: dict[str, Any]) -> None:
    original = copy.deepcopy(lenet)
    inference = infer(lenet)
    assert lenet == original  # the caller's dict is not touched
    expected = copy.deepcopy(original)
    expected["layers"][3]["args"]["in_channels"] = 6
    for layer in expected["layers"]:
        layer.setdefault("args", {})
    assert inference.spec.model_dump(exclude_unset=True) == expected
    assert parse_spec(inference.to_dict()["spec"]) == parse_spec(expected)


def test_resolved_spec_keeps_given_defaults_and_parses_again(tagger: dict[str, Any]) -> None:
    tagger["layers"][2]["args"]["num_layers"] = 1  # a default, given explicitly: kept
    resolved = infer(tagger).spec
    assert resolved.layers[0].args == {"num_embeddings": 9, "embedding_dim": 6}
    assert resolved.layers[2].args == {"input_size": 6, "hidden_size": 6, "num_layers": 1}
    assert resolved.layers[4].args == {"in_features": 6, "out_features": 3}
    again = infer(resolved.model_dump(exclude_none=True))
    assert again.spec == resolved


def test_parse_spec_takes_a_spec_or_a_dict(lenet: dict[str, Any]) -> None:
    spec = parse_spec(lenet)
    assert isinstance(spec, Spec) and spec.name == "LeNet5"
    assert parse_spec(spec) is spec
    assert spec.inputs["x"].dtype == "float32" and spec.inputs["x"].vocab is None
    del lenet["name"]
    assert parse_spec(lenet).name == "Model"


# -- names --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["conv1", "fc", "_hidden", "x" * 64, "Layer_2"])
def test_valid_layer_names(name: str) -> None:
    data = {"inputs": {"inp": {"shape": [2, 3]}}, "layers": [{"name": name, "type": "ReLU"}]}
    assert parse_spec(data).layers[0].name == name


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("my layer", "invalid_name"),
        ("1conv", "invalid_name"),
        ("class", "invalid_name"),
        ("lambda", "invalid_name"),
        ("conv-1", "invalid_name"),
        ("forward", "reserved_name"),
        ("training", "reserved_name"),
        ("parameters", "reserved_name"),
        ("self", "reserved_name"),
        ("F", "reserved_name"),
        ("_parameters", "reserved_name"),
        ("plan", "reserved_name"),
        ("input_names", "reserved_name"),
    ],
)
def test_invalid_and_reserved_layer_names(name: str, code: str) -> None:
    data = {"inputs": {"inp": {"shape": [2, 3]}}, "layers": [{"name": name, "type": "ReLU"}]}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert info.value.code == code and info.value.layer == name
    assert f"'{name}'" in info.value.message


def test_reserved_names_are_nn_module_attributes() -> None:
    module = nn.Module()
    for attr in ("forward", "training", "parameters", "state_dict", "to", "eval", "_modules"):
        assert hasattr(module, attr)
        assert attr in RESERVED


def test_invalid_input_name_names_no_layer() -> None:
    data = {"inputs": {"2x": {"shape": [2, 3]}}, "layers": [{"name": "relu", "type": "ReLU"}]}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert info.value.code == "invalid_name" and info.value.layer is None
    assert "cannot name an input" in info.value.message


def test_model_name_must_be_a_class_name(lenet: dict[str, Any]) -> None:
    lenet["name"] = "Le Net"
    with pytest.raises(SpecError) as info:
        parse_spec(lenet)
    assert info.value.code == "invalid_name" and "e.g. LeNet5" in info.value.message


def test_too_many_layers_are_refused_before_parsing(lenet: dict[str, Any]) -> None:
    lenet["layers"] = lenet["layers"] * 3  # duplicate names, but the count is checked first
    with pytest.raises(LimitError) as info:
        parse_spec(lenet, max_layers=35)
    assert "36 layers" in info.value.message and info.value.detail["limit_key"] == "max_layers"
    with pytest.raises(SpecError) as dup:
        parse_spec(lenet, max_layers=36)
    assert dup.value.code == "duplicate_name"


def test_pydantic_errors_become_one_invalid_spec_message() -> None:
    data = {"inputs": {"x": {"shape": [2, "3"], "dtype": "float16"}}, "layers": [], "extra": 1}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    err = info.value
    assert err.code == "invalid_spec" and err.message.startswith("The spec is not valid: ")
    assert "inputs.x.shape.1" in err.message and "inputs.x.dtype" in err.message
    assert "extra" in err.message
    assert {tuple(d["loc"]) for d in err.detail} >= {("extra",), ("inputs", "x", "dtype")}


def test_empty_labels_are_refused(lenet: dict[str, Any]) -> None:
    lenet["labels"] = []
    with pytest.raises(SpecError) as info:
        parse_spec(lenet)
    assert info.value.code == "invalid_spec" and "labels" in info.value.message
    lenet["labels"] = [str(i) for i in range(10)]
    assert parse_spec(lenet).labels == lenet["labels"]


@pytest.mark.parametrize("name", ["fc\n", "fc\r", "fc ", "\nfc", "fc\n\n", "fc\x00"])
def test_names_with_a_trailing_newline_or_space_are_refused(name: str) -> None:
    """``re.match`` with ``$`` accepts "fc\\n": every name check is a ``fullmatch``."""
    layer = {"inputs": {"inp": {"shape": [2, 3]}}, "layers": [{"name": name, "type": "ReLU"}]}
    inp = {"inputs": {name: {"shape": [2, 3]}}, "layers": [{"name": "relu", "type": "ReLU"}]}
    model = {**inp, "inputs": {"inp": {"shape": [2, 3]}}, "name": name.replace("fc", "Evil")}
    for data in (layer, inp, model):
        with pytest.raises(SpecError) as info:
            parse_spec(data)
        assert info.value.code == "invalid_name", data
