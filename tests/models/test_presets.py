"""models.presets: the tutorial presets against the tutorials' own classes (oracles.py).

A preset built with seed S must hold the same parameters, in the same order, with the same
values, as the hand-written class built after ``torch.manual_seed(S)``, and compute the same
outputs. Every preset must pass shape inference and run on its default inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import oracles
import pytest
import torch
from torch import nn

from models.build import build, infer
from models.catalog import SECTIONS
from models.errors import SpecError
from models.inputs import make_input
from models.presets import PRESETS, TAGGER_VOCAB, TAGS, get_preset, preset_list
from models.tagging_data import TRAINING_DATA

SEEDS = [0, 7]

TUTORIAL: dict[str, tuple[Callable[[], nn.Module], int]] = {
    "tiny_model": (oracles.TinyModel, 22_210),
    "linear_3_2": (oracles.TinyLinear, 8),
    "lenet5": (oracles.LeNet, 81_290),
    "lstm_tagger": (lambda: oracles.LSTMTagger(6, 6, 9, 3), 411),
    "transformer": (oracles.TransformerModel, 44_140_544),
}


def _oracle(name: str, seed: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TUTORIAL[name][0]()


def _random_inputs(name: str, seed: int = 3) -> dict[str, torch.Tensor]:
    spec = PRESETS[name].spec
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, inp in spec["inputs"].items():
        if inp.get("dtype") == "int64":
            out[key] = torch.randint(0, len(inp["vocab"]), inp["shape"], generator=gen)
        else:
            out[key] = torch.randn(inp["shape"], generator=gen)
    return out


# -- the tutorial's models, weight for weight -----------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", list(TUTORIAL))
def test_same_weights_as_the_tutorial_class(name: str, seed: int) -> None:
    model = build(PRESETS[name].spec, seed=seed).model
    oracle = _oracle(name, seed)
    ours, theirs = model.state_dict(), oracle.state_dict()
    assert list(ours) == list(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
    assert [(n, p.shape) for n, p in model.named_parameters()] == [
        (n, p.shape) for n, p in oracle.named_parameters()
    ]
    total = sum(p.numel() for p in model.parameters())
    assert total == sum(p.numel() for p in oracle.parameters()) == TUTORIAL[name][1]


@pytest.mark.parametrize("name", list(TUTORIAL))
def test_same_outputs_as_the_tutorial_class(name: str) -> None:
    model = build(PRESETS[name].spec, seed=0).model.eval()
    oracle = _oracle(name, 0).eval()
    xs = _random_inputs(name)
    with torch.no_grad():
        ours = model(**xs)
        theirs = oracle(**xs)
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", list(TUTORIAL))
def test_layers_print_like_the_tutorial_class(name: str) -> None:
    model = build(PRESETS[name].spec, seed=0).model
    oracle = _oracle(name, 0)
    shared = [n for n, _ in oracle.named_children() if hasattr(model, n)]
    assert shared  # every tutorial class has layers the preset names alike
    for child in shared:
        assert str(getattr(model, child)) == str(getattr(oracle, child))
    assert str(model).startswith(f"{PRESETS[name].spec['name']}(")


def test_lenet_has_the_tutorial_layers_and_sizes() -> None:
    inference = infer(PRESETS["lenet5"].spec)
    shapes = {info.name: info.output_shape for info in inference.layers}
    assert shapes["conv1"] == [1, 6, 28, 28]
    assert shapes["pool1"] == [1, 6, 14, 14]
    assert shapes["conv2"] == [1, 16, 12, 12]
    assert shapes["pool2"] == [1, 16, 6, 6]
    assert shapes["flat"] == [1, 576]
    assert inference.total_params == 81_290
    assert PRESETS["lenet5"].spec["labels"] == [str(d) for d in range(10)]


def test_linear_3_2_by_hand() -> None:
    model = build(PRESETS["linear_3_2"].spec, seed=0).model
    xs = [1.0, -2.0, 0.5]
    w, b = model.linear.weight, model.linear.bias
    rows, bias = w.tolist(), b.tolist()
    by_hand = torch.tensor(
        [[sum(xs[j] * rows[i][j] for j in range(3)) + bias[i] for i in range(2)]]
    )
    x = torch.tensor([xs])
    with torch.no_grad():
        assert torch.allclose(model(x), by_hand, atol=1e-6)
        assert torch.allclose(model(x), x @ w.T + b, atol=1e-6)


def test_tagger_vocabulary_is_the_tutorials_word_to_ix() -> None:
    word_to_ix: dict[str, int] = {}
    for sent, _tags in TRAINING_DATA:
        for word in sent:
            if word not in word_to_ix:
                word_to_ix[word] = len(word_to_ix)
    assert list(word_to_ix) == TAGGER_VOCAB
    assert word_to_ix == {
        "The": 0, "dog": 1, "ate": 2, "the": 3, "apple": 4,
        "Everybody": 5, "read": 6, "that": 7, "book": 8,
    }  # fmt: skip
    assert TAGS == ["DET", "NN", "V"]


@pytest.mark.parametrize("seed", SEEDS)
def test_tagger_scores_the_tutorial_sentence_like_the_tutorial(seed: int) -> None:
    preset = PRESETS["lstm_tagger"]
    word_to_ix = {w: i for i, w in enumerate(TAGGER_VOCAB)}
    sentence = oracles.prepare_sequence(TRAINING_DATA[0][0], word_to_ix)
    assert sentence.tolist() == [0, 1, 2, 3, 4]
    made = make_input(
        preset.default_inputs["sentence"], [5], "int64", vocab=TAGGER_VOCAB, name="sentence"
    )
    assert torch.equal(made.tensor, sentence)
    model = build(preset.spec, seed=seed).model
    oracle = _oracle("lstm_tagger", seed)
    with torch.no_grad():
        ours, theirs = model(sentence), oracle(sentence)
    assert ours.shape == (5, 3)
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert torch.allclose(ours.exp().sum(dim=1), torch.ones(5))


# -- every preset -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_infers_builds_and_runs(name: str) -> None:
    preset = PRESETS[name]
    assert preset.section in SECTIONS
    assert set(preset.default_inputs) == set(preset.spec["inputs"])
    inference = infer(preset.spec)
    assert inference.total_params == sum(info.params for info in inference.layers)
    built = build(preset.spec, seed=preset.seed)
    model = built.model.eval()
    assert sum(p.numel() for p in model.parameters()) == inference.total_params
    with torch.no_grad():
        out = model(**_random_inputs(name))
    (shape,) = inference.outputs.values()
    assert list(out.shape) == shape
    assert torch.isfinite(out).all()
    labels = preset.spec.get("labels")
    if labels is not None:
        assert len(labels) == shape[-1]


@pytest.mark.parametrize("name", list(PRESETS))
def test_default_inputs_make_tensors_the_preset_runs_on(name: str) -> None:
    preset = PRESETS[name]
    xs = {}
    for key, inp in preset.spec["inputs"].items():
        made = make_input(
            preset.default_inputs[key],
            inp["shape"],
            inp.get("dtype", "float32"),
            vocab=inp.get("vocab"),
            name=key,
        )
        xs[key] = made.tensor
        assert list(made.tensor.shape) == inp["shape"]
    model = build(preset.spec, seed=preset.seed).model.eval()
    with torch.no_grad():
        out = model(**xs)
    assert torch.isfinite(out).all()


def test_residual_block_adds_its_input() -> None:
    model = build(PRESETS["residual_block"].spec, seed=0).model.eval()
    x = torch.randn(1, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        branch = model.bn2(model.conv2(model.relu1(model.bn1(model.conv1(x)))))
        assert torch.equal(model(x), torch.relu(x + branch))


def test_preset_list() -> None:
    rows = preset_list()
    assert [r["name"] for r in rows] == list(PRESETS)
    lenet = next(r for r in rows if r["name"] == "lenet5")
    assert lenet == {
        "name": "lenet5",
        "title": PRESETS["lenet5"].title,
        "description": PRESETS["lenet5"].description,
        "section": "convolution",
        "layers": 12,
    }
    assert {r["name"]: r["section"] for r in rows if r["name"] in TUTORIAL} == {
        "tiny_model": "module_parameter",
        "linear_3_2": "linear",
        "lenet5": "convolution",
        "lstm_tagger": "recurrent",
        "transformer": "transformer",
    }


def test_get_preset() -> None:
    assert get_preset("lenet5") is PRESETS["lenet5"]
    with pytest.raises(SpecError) as info:
        get_preset("resnet50")
    assert info.value.code == "unknown_preset"
    assert "lenet5" in info.value.message and "resnet50" in info.value.message


def test_to_spec_is_a_copy() -> None:
    preset = PRESETS["lenet5"]
    spec = preset.to_spec()
    spec["layers"][0]["args"]["out_channels"] = 7
    assert preset.spec["layers"][0]["args"]["out_channels"] == 6
