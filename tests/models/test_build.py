"""models.build: meta-device inference, and the built module against the tutorial's classes.

The oracles (tests/models/oracles.py) are the tutorials' hand-written LeNet and LSTMTagger.
"""

from __future__ import annotations

import json
from typing import Any

import oracles
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from models.build import SpecModel, build, infer
from models.errors import LimitError
from models.limits import Limits
from models.spec import RESERVED, SPEC_MODEL_ATTRS


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- LeNet ----------------------------------------------------------------------------------
LENET_SHAPES = [
    [1, 6, 28, 28],
    [1, 6, 28, 28],
    [1, 6, 14, 14],
    [1, 16, 12, 12],
    [1, 16, 12, 12],
    [1, 16, 6, 6],
    [1, 576],
    [1, 120],
    [1, 120],
    [1, 84],
    [1, 84],
    [1, 10],
]
LENET_PARAMS = {"conv1": 156, "conv2": 880, "fc1": 69240, "fc2": 10164, "fc3": 850}


def test_lenet_layer_infos(lenet: dict[str, Any]) -> None:
    inference = infer(lenet)
    infos = inference.layers
    assert [i.name for i in infos] == [layer["name"] for layer in lenet["layers"]]
    assert [i.type for i in infos] == [layer["type"] for layer in lenet["layers"]]
    assert [i.output_shape for i in infos] == LENET_SHAPES
    assert {i.name: i.params for i in infos if i.params} == LENET_PARAMS
    assert inference.total_params == sum(LENET_PARAMS.values()) == 81290
    for info in infos:
        numel = 1
        for s in info.output_shape:
            numel *= s
        assert info.activation_bytes == numel * 4
        assert info.output_dtype == "float32" and info.extras == {}
    assert sum(i.activation_bytes for i in infos) == 4 * 16762
    assert inference.total_activation_bytes == 4 * 1024 + 4 * 16762  # the input counts too
    assert [i.auto for i in infos if i.auto] == [["in_channels"]]
    assert infos[3].args == {"in_channels": 6, "out_channels": 16, "kernel_size": 3}
    assert inference.input_shapes == {"x": [1, 1, 32, 32]}
    assert inference.outputs == {"fc3": [1, 10]}
    assert inference.warnings == []


def test_lenet_flops_equal_flop_counter_on_the_real_model(lenet: dict[str, Any]) -> None:
    built = build(lenet, seed=0)
    with FlopCounterMode(display=False) as counter:
        built.model(torch.randn(1, 1, 32, 32))
    per_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    for info in built.inference.layers:
        assert info.flops == per_module.get(f"SpecModel.{info.name}", 0), info.name
    assert built.inference.total_flops == counter.get_total_flops() == 644112
    assert built.inference.layers[0].flops == 2 * 6 * 28 * 28 * 25  # one MAC = 2 FLOPs


def test_lenet_equals_the_tutorial_class(lenet: dict[str, Any]) -> None:
    torch.manual_seed(1)
    ref = oracles.LeNet()
    model = build(lenet, seed=1).model
    assert _same_state(model, ref)
    x = torch.randn(4, 1, 32, 32)
    lenet["inputs"]["x"]["shape"] = [4, 1, 32, 32]
    assert torch.equal(model(x), ref(x))
    names = [n for n, _ in model.named_parameters()]
    assert names == [n for n, _ in ref.named_parameters()] and names[0] == "conv1.weight"


def test_print_model_reads_like_the_tutorial(lenet: dict[str, Any]) -> None:
    text = str(build(lenet, seed=0).model)
    assert text.startswith("LeNet5(\n  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))")
    assert "(fc1): Linear(in_features=576, out_features=120, bias=True)" in text
    assert "(flat): Flatten(start_dim=1, end_dim=-1)" in text


def test_spec_model_attrs_are_reserved_names(lenet: dict[str, Any]) -> None:
    model = build(lenet, seed=0).model
    own = set(vars(model)) - set(vars(nn.Module()))
    assert own == SPEC_MODEL_ATTRS - {"bind", "run_plan"}  # the methods
    assert all(hasattr(model, name) for name in SPEC_MODEL_ATTRS)
    assert SPEC_MODEL_ATTRS <= RESERVED
    assert {n for n in vars(SpecModel) if not n.startswith("__")} <= RESERVED


# -- the tagger -------------------------------------------------------------------------------
def test_tagger_equals_the_tutorial_class(tagger: dict[str, Any]) -> None:
    torch.manual_seed(1)
    ref = oracles.LSTMTagger(6, 6, 9, 3)
    built = build(tagger, seed=1)
    assert _same_state(built.model, ref)
    sentence = torch.tensor([0, 1, 2, 3, 4])
    with torch.no_grad():
        assert torch.allclose(built.model(sentence), ref(sentence), atol=1e-6)
    lstm = built.inference.layers[2]
    assert lstm.extras == {"h_n": [1, 1, 6], "c_n": [1, 1, 6]}
    assert lstm.activation_bytes == (5 * 6 + 6 + 6) * 4
    assert built.inference.layers[0].output_dtype == "float32"
    assert built.inference.layers[0].auto == ["num_embeddings"]


def test_sequence_length_can_be_overridden(tagger: dict[str, Any]) -> None:
    inference = infer(tagger, input_shapes={"sentence": [8]})
    assert inference.input_shapes == {"sentence": [8]}
    assert inference.outputs == {"log_softmax": [8, 3]}
    assert infer(tagger).outputs == {"log_softmax": [5, 3]}


# -- seeds -------------------------------------------------------------------------------------
def test_same_seed_same_weights_other_seed_other_weights(lenet: dict[str, Any]) -> None:
    a, b, c = (build(lenet, seed=s).model for s in (3, 3, 4))
    assert _same_state(a, b)
    assert not torch.equal(a.conv1.weight, c.conv1.weight)
    assert build(lenet, seed=3).seed == 3


def test_build_with_a_seed_leaves_the_global_rng_alone(lenet: dict[str, Any]) -> None:
    torch.manual_seed(123)
    state = torch.get_rng_state()
    build(lenet, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    expected = torch.randn(3)
    torch.manual_seed(123)
    assert torch.equal(torch.randn(3), expected)


def test_build_without_a_seed_draws_from_the_global_rng(lenet: dict[str, Any]) -> None:
    torch.manual_seed(9)
    ref = oracles.LeNet()
    torch.manual_seed(9)
    assert _same_state(build(lenet).model, ref)


# -- outputs, inputs, reuse -------------------------------------------------------------------
def test_multi_output_spec_returns_a_tuple(lenet: dict[str, Any]) -> None:
    lenet["outputs"] = ["flat", "fc3"]
    model = build(lenet, seed=1).model
    torch.manual_seed(1)
    ref = oracles.LeNet()
    x = torch.randn(1, 1, 32, 32)
    out = model(x)
    assert isinstance(out, tuple) and len(out) == 2
    flat = F.max_pool2d(F.relu(ref.conv2(F.max_pool2d(F.relu(ref.conv1(x)), 2))), 2).flatten(1)
    assert torch.equal(out[0], flat)
    assert torch.equal(out[1], ref(x))


def test_inputs_by_keyword_and_errors_for_wrong_inputs() -> None:
    spec = {
        "name": "Merge",
        "inputs": {"a": {"shape": [2, 3]}, "b": {"shape": [2, 3]}},
        "layers": [{"name": "sum", "type": "Add", "inputs": ["a", "b"]}],
    }
    model = build(spec).model
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    assert torch.equal(model(a, b), a + b)
    assert torch.equal(model(b=b, a=a), a + b)
    assert torch.equal(model(a, b=b), a + b)
    with pytest.raises(TypeError, match=r"takes inputs \['a', 'b'\]"):
        model(a)
    with pytest.raises(TypeError, match=r"takes inputs"):
        model(a, b, a)


def test_build_reuses_a_given_inference(lenet: dict[str, Any]) -> None:
    inference = infer(lenet)
    built = build(lenet, seed=0, inference=inference)
    assert built.inference is inference
    assert built.model.conv2.in_channels == 6


def test_inference_to_dict_is_json(tagger: dict[str, Any]) -> None:
    data = json.loads(json.dumps(infer(tagger).to_dict()))
    assert data["total_params"] == 54 + 336 + 21
    assert data["layers"][2]["extras"] == {"h_n": [1, 1, 6], "c_n": [1, 1, 6]}
    assert data["spec"]["layers"][0]["args"]["num_embeddings"] == 9


def test_extras_are_kept_aside_and_the_main_tensor_passed_on() -> None:
    spec = {
        "name": "Attn",
        "inputs": {"x": {"shape": [5, 2, 8]}},
        "layers": [
            {
                "name": "attn",
                "type": "MultiheadAttention",
                "args": {"num_heads": 2, "embed_dim": "auto"},
            }
        ],
    }
    inference = infer(spec)
    assert inference.layers[0].extras == {"attn_weights": [2, 5, 5]}
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(8, 2)
    model = build(spec, seed=0).model
    x = torch.randn(5, 2, 8)
    assert torch.equal(model(x), ref(x, x, x)[0])


# -- warnings ------------------------------------------------------------------------------
TRANSFORMER = {
    "name": "T",
    "inputs": {"src": {"shape": [10, 1, 32]}, "tgt": {"shape": [20, 1, 32]}},
    "layers": [
        {
            "name": "transformer",
            "type": "Transformer",
            "args": {"d_model": 32, "nhead": 4, "dim_feedforward": 64},
            "inputs": ["src", "tgt"],
        }
    ],
}


def test_torch_warnings_are_collected_not_raised() -> None:
    # pytest turns warnings into errors: reaching the asserts means none leaked.
    inference = infer(TRANSFORMER)
    assert len(inference.warnings) == 1
    assert inference.warnings[0].startswith("transformer: enable_nested_tensor is True")
    built = build(TRANSFORMER, seed=0, inference=inference)
    assert built.inference.warnings == inference.warnings
    assert sum(p.numel() for p in built.model.parameters()) == inference.total_params


def test_default_transformer_fits_the_default_limits() -> None:
    spec = json.loads(json.dumps(TRANSFORMER))
    spec["inputs"] = {"src": {"shape": [10, 1, 512]}, "tgt": {"shape": [20, 1, 512]}}
    spec["layers"][0]["args"] = {}
    inference = infer(spec)
    assert inference.total_params == 44_140_544
    assert inference.outputs == {"transformer": [20, 1, 512]}


# -- limits ---------------------------------------------------------------------------------
def _limited(spec: dict[str, Any], setting: str, limit: int) -> LimitError | None:
    try:
        infer(spec, limits=Limits(**{setting: limit}))
    except LimitError as err:
        return err
    return None


@pytest.mark.parametrize(
    ("setting", "value", "which"),
    [
        ("max_params", 81290, "lenet"),
        ("max_flops", 644112, "lenet"),
        ("max_activation_bytes", 4 * (1024 + 16762), "lenet"),  # input + every output
        ("max_layers", 12, "lenet"),
        ("max_input_elements", 1024, "lenet"),
        ("max_sequence_length", 5, "tagger"),
        ("max_vocab", 9, "tagger"),
    ],
)
def test_each_limit_accepts_its_value_and_refuses_one_less(
    setting: str, value: int, which: str, lenet: dict[str, Any], tagger: dict[str, Any]
) -> None:
    spec = lenet if which == "lenet" else tagger
    assert _limited(spec, setting, value) is None  # the cost equals the limit: accepted
    err = _limited(spec, setting, value - 1)  # the cost is the limit + 1: refused
    assert err is not None, f"{setting}={value - 1} should refuse"
    assert err.code == "limit_exceeded" and f"at most {value - 1:,}" in err.message
    assert err.detail == {"limit": value - 1, "actual": value, "limit_key": setting}
    body = err.to_dict()
    assert set(body) <= {"code", "message", "layer", "detail"}


def test_limit_names_the_layer_where_it_is_reached(lenet: dict[str, Any]) -> None:
    err = _limited(lenet, "max_params", 156 + 880 + 69240 - 1)
    assert err is not None and err.layer == "fc1"
    assert "(reached at layer fc1)" in err.message and "Use smaller layers." in err.message


# -- the meta device agrees with the CPU near the edges of what torch accepts ---------------
def _one(type_name: str, args: dict[str, Any], *shapes: list[int]) -> dict[str, Any]:
    inputs = {f"x{i}": {"shape": shape} for i, shape in enumerate(shapes)}
    layer = {"name": "layer", "type": type_name, "args": args, "inputs": list(inputs)}
    return {"name": "Edge", "inputs": inputs, "layers": [layer]}


EDGES = {
    "add_broadcast": (_one("Add", {}, [2, 3], [3]), [2, 3]),
    "permute_negative": (_one("Permute", {"dims": [-1, 0]}, [2, 6]), [6, 2]),
    "unflatten_inferred": (
        _one("Unflatten", {"dim": 1, "unflattened_size": [-1, 3]}, [2, 6]),
        [2, 2, 3],
    ),
    "softmax_last": (_one("Softmax", {"dim": -1}, [2, 6]), [2, 6]),
    "same_padding": (
        _one(
            "Conv2d",
            {"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "same"},
            [1, 1, 5, 5],
        ),
        [1, 2, 5, 5],
    ),
    "transpose_output_padding": (
        _one(
            "ConvTranspose2d",
            {
                "in_channels": 1,
                "out_channels": 1,
                "kernel_size": 3,
                "stride": 2,
                "output_padding": 1,
            },
            [1, 1, 4, 4],
        ),
        [1, 1, 10, 10],
    ),
    "transpose_groups": (
        _one(
            "ConvTranspose1d",
            {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "groups": 2},
            [1, 4, 5],
        ),
        [1, 6, 7],
    ),
    "bidirectional_unbatched": (
        _one(
            "LSTM",
            {"input_size": "auto", "hidden_size": 3, "num_layers": 2, "bidirectional": True},
            [5, 4],
        ),
        [5, 6],
    ),
    "attention_batch_first": (
        _one(
            "MultiheadAttention",
            {"embed_dim": "auto", "num_heads": 2, "batch_first": True},
            [2, 5, 8],
        ),
        [2, 5, 8],
    ),
    "cross_attention": (
        _one(
            "MultiheadAttention",
            {"embed_dim": 8, "num_heads": 2, "kdim": 4, "vdim": 6},
            [5, 1, 8],
            [7, 1, 4],
            [7, 1, 6],
        ),
        [5, 1, 8],
    ),
    "decoder_memory": (
        _one(
            "TransformerDecoderLayer",
            {"d_model": "auto", "nhead": 2, "dim_feedforward": 8},
            [3, 8],
            [5, 8],
        ),
        [3, 8],
    ),
    "bilinear_batched": (
        _one(
            "Bilinear",
            {"in1_features": "auto", "in2_features": "auto", "out_features": 2},
            [4, 5, 3],
            [4, 5, 6],
        ),
        [4, 5, 2],
    ),
}


@pytest.mark.parametrize("spec, shape", EDGES.values(), ids=list(EDGES))
def test_edge_specs_are_accepted_and_run_on_cpu_as_inferred(
    spec: dict[str, Any], shape: list[int]
) -> None:
    built = build(spec, seed=0)
    assert built.inference.outputs == {"layer": shape}
    xs = [torch.randn(*inp["shape"]) for inp in spec["inputs"].values()]
    out = built.model(*xs)
    assert list(out.shape) == shape and torch.isfinite(out).all()
