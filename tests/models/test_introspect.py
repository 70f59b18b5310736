"""models.introspect against torch itself: print(model), named_parameters(), requires_grad."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.build import build
from models.errors import SpecError
from models.introspect import (
    layer_text,
    module_tree,
    parameter_table,
    parameter_values,
    set_requires_grad,
    summary,
)


class LeNet(nn.Module):
    """The tutorial's hand-written LeNet-5 (the oracle for print(model))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 3)
        self.fc1 = nn.Linear(16 * 6 * 6, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 576)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


BN_SPEC = {
    "name": "Norm",
    "inputs": {"x": {"shape": [4, 3]}},
    "layers": [
        {"name": "fc", "type": "Linear", "args": {"in_features": 3, "out_features": 5}},
        {"name": "bn", "type": "BatchNorm1d", "args": {"num_features": 5}},
    ],
}


def test_module_tree_is_print_model(lenet) -> None:
    model = build(lenet, seed=1).model
    assert module_tree(model) == str(model)
    assert module_tree(model).startswith("LeNet5(\n  (conv1): Conv2d(1, 6, kernel_size=(5, 5)")


def test_layers_print_as_the_hand_written_class(lenet) -> None:
    model = build(lenet, seed=1).model
    oracle = LeNet()
    for name in ("conv1", "conv2", "fc1", "fc2", "fc3"):
        assert layer_text(model, name) == str(getattr(oracle, name))
    assert layer_text(model, "pool1") == str(nn.MaxPool2d(2))


def test_layer_text_reaches_nested_submodules() -> None:
    spec = {
        "inputs": {"x": {"shape": [5, 1, 16]}},
        "layers": [
            {
                "name": "encoder",
                "type": "TransformerEncoder",
                "args": {"d_model": 16, "nhead": 4, "dim_feedforward": 32, "num_layers": 2},
            }
        ],
    }
    model = build(spec, seed=0).model
    assert layer_text(model, "encoder.layers.1.linear1") == str(model.encoder.layers[1].linear1)
    assert "in_features=16, out_features=32" in layer_text(model, "encoder.layers.1.linear1")


def test_unknown_layer_lists_the_layers(lenet) -> None:
    model = build(lenet, seed=1).model
    for bad in ("conv9", "", "conv1.nothing"):
        with pytest.raises(SpecError) as info:
            layer_text(model, bad)
        assert info.value.code == "unknown_layer"
        assert "conv1, relu1, pool1" in info.value.message


def test_parameter_rows_match_named_parameters(lenet) -> None:
    model = build(lenet, seed=1).model
    table = parameter_table(model)
    named = list(model.named_parameters())
    assert [r["name"] for r in table["rows"]] == [n for n, _ in named]
    for row, (name, p) in zip(table["rows"], named, strict=True):
        assert row["module"] == name.rsplit(".", 1)[0]
        assert row["layer"] == name.split(".")[0]
        assert row["shape"] == list(p.shape)
        assert row["count"] == p.numel()
        assert row["dtype"] == "float32" and row["device"] == "cpu" and row["requires_grad"]
        assert row["mean"] == pytest.approx(p.mean().item(), rel=1e-5, abs=1e-7)
        assert row["std"] == pytest.approx(p.std(unbiased=False).item(), rel=1e-5)
        assert row["min"] == p.min().item() and row["max"] == p.max().item()
        assert all(type(row[k]) is float for k in ("mean", "std", "min", "max"))
    conv1 = table["rows"][0]
    assert (conv1["name"], conv1["shape"], conv1["count"]) == ("conv1.weight", [6, 1, 5, 5], 150)


def test_totals_equal_torch_and_the_tutorial(lenet) -> None:
    model = build(lenet, seed=1).model
    totals = parameter_table(model)["totals"]
    assert totals["count"] == sum(p.numel() for p in model.parameters())
    assert totals["count"] == sum(p.numel() for p in LeNet().parameters()) == 81290
    assert totals["trainable"] == totals["count"] and totals["frozen"] == 0
    assert totals["bytes"] == 4 * totals["count"]
    assert totals["tensors"] == 10


def test_shared_parameter_counted_once(lenet) -> None:
    model = build(lenet, seed=1).model
    before = parameter_table(model)["totals"]
    model.fc2.weight = model.fc1.weight  # one Parameter under two names (as in weight tying)
    table = parameter_table(model)
    names = [r["name"] for r in table["rows"]]
    assert "fc1.weight" in names and "fc2.weight" not in names
    assert table["totals"]["count"] == sum(p.numel() for p in model.parameters())
    assert table["totals"]["count"] == before["count"] - 84 * 120
    assert table["totals"]["tensors"] == before["tensors"] - 1
    assert sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False)) == (
        table["totals"]["count"] + 576 * 120
    )


def test_tied_weights_listed_once() -> None:
    spec = {
        "inputs": {"x": {"shape": [2, 8]}},
        "layers": [
            {"name": "fc1", "type": "Linear", "args": {"in_features": 8, "out_features": 8}},
            {"name": "fc2", "type": "Linear", "args": {"in_features": 8, "out_features": 8}},
        ],
    }
    model = build(spec, seed=0).model
    model.fc2.weight = model.fc1.weight
    table = parameter_table(model)
    assert [r["name"] for r in table["rows"]] == ["fc1.weight", "fc1.bias", "fc2.bias"]
    assert table["totals"]["count"] == sum(p.numel() for p in model.parameters()) == 64 + 8 + 8
    frozen = set_requires_grad(model, "fc2", False)
    assert frozen == ["fc1.weight", "fc2.bias"]  # the tied weight, under its torch name
    assert not model.fc1.weight.requires_grad and model.fc1.bias.requires_grad
    assert torch.equal(parameter_values(model, "fc2.weight"), model.fc1.weight)


def test_freezing_a_layer_flips_exactly_its_parameters(lenet) -> None:
    model = build(lenet, seed=1).model
    before = parameter_table(model)["totals"]
    changed = set_requires_grad(model, "fc1", False)
    assert changed == ["fc1.weight", "fc1.bias"]
    for name, p in model.named_parameters():
        assert p.requires_grad == (not name.startswith("fc1."))
    after = parameter_table(model)["totals"]
    assert after["trainable"] == before["trainable"] - (576 * 120 + 120)
    assert after["frozen"] == 576 * 120 + 120
    assert after["count"] == before["count"]
    rows = {r["name"]: r for r in parameter_table(model)["rows"]}
    assert not rows["fc1.weight"]["requires_grad"] and rows["fc2.weight"]["requires_grad"]
    assert set_requires_grad(model, "fc1", False) == []  # nothing left to change
    assert set_requires_grad(model, "fc1.bias", True) == ["fc1.bias"]
    assert model.fc1.bias.requires_grad and not model.fc1.weight.requires_grad
    assert set_requires_grad(model, "relu1", False) == []  # a layer without parameters


def test_freezing_a_nested_module_path() -> None:
    spec = {
        "inputs": {"x": {"shape": [5, 1, 16]}},
        "layers": [
            {
                "name": "encoder",
                "type": "TransformerEncoder",
                "args": {"d_model": 16, "nhead": 4, "dim_feedforward": 32, "num_layers": 2},
            }
        ],
    }
    model = build(spec, seed=0).model
    changed = set_requires_grad(model, "encoder.layers.0.self_attn", False)
    expected = [
        n for n, _ in model.named_parameters() if n.startswith("encoder.layers.0.self_attn")
    ]
    assert changed == expected and len(expected) == 4
    rows = parameter_table(model)["rows"]
    assert {r["layer"] for r in rows} == {"encoder"}
    assert rows[0]["module"] == "encoder.layers.0.self_attn"


def test_unknown_names_are_404(lenet) -> None:
    model = build(lenet, seed=1).model
    with pytest.raises(SpecError) as info:
        parameter_values(model, "fc1.weights")
    assert info.value.code == "unknown_parameter"
    assert "conv1.weight" in info.value.message
    with pytest.raises(SpecError) as info:
        parameter_values(model, "fc1")  # a module, not a parameter
    assert info.value.code == "unknown_parameter"
    with pytest.raises(SpecError) as info:
        set_requires_grad(model, "fc9", False)
    assert info.value.code == "unknown_layer"
    assert all(p.requires_grad for p in model.parameters())


def test_parameter_values_are_detached(lenet) -> None:
    model = build(lenet, seed=1).model
    values = parameter_values(model, "conv2.bias")
    assert torch.equal(values, model.conv2.bias) and not values.requires_grad
    assert values.data_ptr() == model.conv2.bias.data_ptr()  # a view, not a copy


def test_batchnorm_buffers_listed() -> None:
    model = build(BN_SPEC, seed=0).model
    table = parameter_table(model)
    buffers = {b["name"]: b for b in table["buffers"]}
    assert list(buffers) == [n for n, _ in model.named_buffers()]
    assert buffers["bn.running_mean"]["shape"] == [5] and buffers["bn.running_mean"]["count"] == 5
    assert buffers["bn.running_var"]["count"] == 5
    assert buffers["bn.num_batches_tracked"] == {
        "name": "bn.num_batches_tracked",
        "layer": "bn",
        "shape": [],
        "count": 1,
        "dtype": "int64",
    }
    assert "bn.running_mean" not in [r["name"] for r in table["rows"]]
    assert table["totals"]["count"] == 3 * 5 + 5 + 5 + 5


def test_summary_joins_inference_and_live_model(lenet) -> None:
    built = build(lenet, seed=1)
    rows = summary(built.model, built.inference)
    assert [r["name"] for r in rows] == [layer["name"] for layer in lenet["layers"]]
    by_name = {r["name"]: r for r in rows}
    assert by_name["pool2"]["output_shape"] == [1, 16, 6, 6]
    assert by_name["flat"]["output_shape"] == [1, 576]
    assert by_name["conv1"]["params"] == 156 and by_name["relu1"]["params"] == 0
    assert by_name["fc1"]["flops"] == 2 * 576 * 120
    assert by_name["fc1"]["activation_bytes"] == 120 * 4
    set_requires_grad(built.model, "fc1.weight", False)
    by_name = {r["name"]: r for r in summary(built.model, built.inference)}
    assert by_name["fc1"]["trainable"] == 120 and by_name["fc1"]["params"] == 576 * 120 + 120
    assert sum(r["params"] for r in rows) == 81290 == built.inference.total_params
    assert built.inference.total_flops == sum(r["flops"] for r in rows)


def test_summary_extras_for_lstm(tagger) -> None:
    built = build(tagger, seed=1)
    lstm = next(r for r in summary(built.model, built.inference) if r["name"] == "lstm")
    assert lstm["output_shape"] == [5, 1, 6]
    assert lstm["extras"] == {"h_n": [1, 1, 6], "c_n": [1, 1, 6]}
    assert lstm["params"] == sum(p.numel() for p in nn.LSTM(6, 6).parameters())


def test_parameter_statistics_are_the_activations_ones(lenet) -> None:
    """One arithmetic (models/stats.py): a parameter's mean, std, min and max are
    ``tensor_stats``'s, over its finite values when a NaN or ±inf crept in."""
    from models.stats import tensor_stats

    model = build(lenet, seed=1).model
    with torch.no_grad():
        model.fc1.weight[0, :3] = torch.tensor([float("nan"), float("inf"), 1e30])
    rows = {r["name"]: r for r in parameter_table(model)["rows"]}
    for name, p in model.named_parameters():
        want = tensor_stats(p)
        assert [rows[name][k] for k in ("mean", "std", "min", "max")] == [
            want[k] for k in ("mean", "std", "min", "max")
        ]
    finite = model.fc1.weight.detach().reshape(-1)[2:].double()
    assert rows["fc1.weight"]["max"] == pytest.approx(1e30)
    assert rows["fc1.weight"]["mean"] == pytest.approx(finite.mean().item(), rel=1e-6)
