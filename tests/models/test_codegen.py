"""models.codegen: the exported Python runs on its own and equals the built model.

For every preset and every catalog entry's example, the generated class (executed from its
source, with no access to this package) must load the built model's state_dict strictly
and give the same outputs, and building it after ``torch.manual_seed(S)`` must give the
same weights as ``build(spec, seed=S)``: that proves the construction order and the args.
"""

from __future__ import annotations

import ast
import contextlib
import io
import warnings
from typing import Any

import pytest
import torch
from torch import nn

from models.build import build, infer
from models.catalog import CATALOG
from models.codegen import to_python
from models.presets import PRESETS

SEED = 7


def _catalog_spec(type_name: str) -> dict[str, Any]:
    """A one-layer spec from the entry's example; several inputs are wired by name."""
    entry = CATALOG[type_name]
    example = entry.example
    shapes = example.inputs
    if len(shapes) == 1:
        names = ["x"]
    elif len(entry.input_names) == len(shapes):
        names = list(entry.input_names)
    else:
        names = [f"x{i}" for i in range(len(shapes))]
    inputs: dict[str, Any] = {
        n: {"shape": list(s), "dtype": example.dtype} for n, s in zip(names, shapes, strict=True)
    }
    if example.vocab:  # token ids are drawn below the vocabulary's size
        for inp in inputs.values():
            inp["vocab"] = [f"w{i}" for i in range(example.vocab)]
    layer: dict[str, Any] = {"name": "layer", "type": type_name, "args": dict(example.args)}
    if len(names) > 1:
        layer["inputs"] = names
    return {"name": f"{type_name}Example", "inputs": inputs, "layers": [layer]}


SPECS: dict[str, dict[str, Any]] = {
    **{f"preset:{name}": p.spec for name, p in PRESETS.items()},
    **{f"catalog:{t}": _catalog_spec(t) for t in CATALOG},
}


def _load(code: str, class_name: str) -> type[nn.Module]:
    namespace: dict[str, Any] = {"__name__": "exported"}
    exec(compile(code, f"<{class_name}>", "exec"), namespace)
    return namespace[class_name]


def _quiet(make):
    with warnings.catch_warnings():
        # nn.Transformer / nn.TransformerEncoder warn about enable_nested_tensor
        warnings.simplefilter("ignore")
        return make()


def _inputs(spec: dict[str, Any]) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(11)
    out = {}
    for name, inp in spec["inputs"].items():
        if inp.get("dtype") == "int64":
            out[name] = torch.randint(0, len(inp["vocab"]), inp["shape"], generator=gen)
        else:
            out[name] = torch.randn(inp["shape"], generator=gen)
    return out


def _same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("key", list(SPECS))
def test_generated_class_equals_the_built_model(key: str) -> None:
    spec = SPECS[key]
    built = build(spec, seed=SEED)
    code = to_python(spec)
    ast.parse(code)
    assert all(len(line) <= 100 for line in code.splitlines())
    assert "import models" not in code and "from models" not in code
    cls = _load(code, spec["name"])

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        exported = _quiet(cls)  # one 44 M-parameter init is enough for nn.Transformer
    _same_state(exported.state_dict(), built.model.state_dict())
    assert str(exported) == str(built.model)

    exported.load_state_dict(built.model.state_dict(), strict=True)
    exported.eval()
    model = built.model.eval()
    xs = _inputs(spec)
    with torch.no_grad():
        ours = model(**xs)
        theirs = exported(**xs)
    assert theirs.shape == ours.shape
    assert torch.allclose(theirs, ours, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["lenet5", "lstm_tagger", "residual_block", "mlp"])
def test_annotated_code_is_the_same_model(name: str) -> None:
    spec = PRESETS[name].spec
    inference = infer(spec)
    plain, annotated = to_python(spec), to_python(spec, inference)
    strip = [line.split("  #")[0] for line in annotated.splitlines() if not _comment(line)]
    assert strip == [line.split("  #")[0] for line in plain.splitlines()]
    for info in inference.layers:
        shape = str(tuple(info.output_shape))
        assert any(f"self.{info.name}(" in ln and shape in ln for ln in annotated.splitlines())


def _comment(line: str) -> bool:
    return line.strip().startswith("#")


def test_lenet_reads_like_the_tutorial() -> None:
    code = to_python(PRESETS["lenet5"].spec, infer(PRESETS["lenet5"].spec))
    assert "class LeNet(nn.Module):" in code
    assert "        self.conv1 = nn.Conv2d(1, 6, 5)\n" in code
    assert "        self.conv2 = nn.Conv2d(6, 16, 3)\n" in code
    assert "        self.fc1 = nn.Linear(576, 120)\n" in code
    assert "        self.pool1 = nn.MaxPool2d(2)\n" in code
    assert "        x = self.conv1(x)  # (1, 6, 28, 28)\n" in code
    assert "        x = self.flat(x)  # (1, 576)\n" in code
    assert "    def forward(self, x):\n" in code
    assert code.rstrip().endswith("out = model(torch.randn(1, 1, 32, 32))\n    print(out.shape)")
    assert all(len(line) <= 100 for line in code.splitlines())


def test_tuple_outputs_and_helpers() -> None:
    code = to_python(PRESETS["lstm_tagger"].spec)
    assert "        x = self.lstm(x)[0]  # returns (output, (h_n, c_n))\n" in code
    assert "        x = self.word_embeddings(sentence)\n" in code
    assert "class Unsqueeze(nn.Module):" in code
    assert "        self.as_batch = Unsqueeze(1)\n" in code
    assert "        self.log_softmax = nn.LogSoftmax(dim=1)\n" in code


def test_self_attention_uses_the_input_three_times() -> None:
    code = to_python(_catalog_spec("MultiheadAttention"))
    assert "        x = self.layer(x, x, x)[0]  # returns (output, attn_weights)\n" in code


def test_merges_keep_the_values_they_need() -> None:
    code = to_python(PRESETS["residual_block"].spec)
    assert "        out = self.conv1(x)\n" in code
    assert "        bn2 = self.bn2(out)\n" in code
    assert "        out = self.add(x, bn2)\n" in code
    assert "class Add(nn.Module):" in code


def test_auto_args_are_resolved_and_encoder_matches_the_factory() -> None:
    code = to_python(PRESETS["transformer_classifier"].spec)
    assert "auto" not in code
    assert "        self.embedding = nn.Embedding(31, 32)\n" in code
    assert (
        "            nn.TransformerEncoderLayer(32, nhead=4, dim_feedforward=64, "
        "batch_first=True),\n            num_layers=2,\n" in code
    )
    assert "        self.classifier = nn.Linear(32, 2)\n" in code


def test_final_norm_and_multiple_outputs() -> None:
    spec = {
        "name": "Two",
        "inputs": {"a": {"shape": [2, 5, 8]}},
        "layers": [
            {
                "name": "enc",
                "type": "TransformerEncoder",
                "args": {"d_model": 8, "nhead": 2, "num_layers": 1, "final_norm": True},
            },
            {"name": "head", "type": "Linear", "args": {"in_features": 8, "out_features": 3}},
            {"name": "x", "type": "Linear", "args": {"in_features": 8, "out_features": 4}},
        ],
        "outputs": ["head", "enc"],
    }
    spec["layers"][2]["inputs"] = ["enc"]
    code = to_python(spec)
    assert "norm=nn.LayerNorm(8, eps=1e-05)" in code
    assert "        return head, enc\n" in code
    built = build(spec, seed=SEED)
    cls = _load(code, "Two")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        exported = _quiet(cls)
    _same_state(exported.state_dict(), built.model.state_dict())
    x = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for ours, theirs in zip(built.model.eval()(x), exported.eval()(x), strict=True):
            assert torch.allclose(ours, theirs, atol=1e-6)


def test_chain_variable_never_overwrites_a_live_value() -> None:
    lin = {"in_features": 4, "out_features": 4}
    spec = {
        "name": "Wired",
        "inputs": {"x": {"shape": [2, 4]}, "out": {"shape": [2, 4]}},
        "layers": [
            {"name": "a", "type": "Linear", "args": lin},
            {"name": "b", "type": "ReLU"},
            {"name": "h", "type": "Linear", "args": lin, "inputs": ["out"]},
            {"name": "s", "type": "Add", "inputs": ["h", "x"]},
            {"name": "t", "type": "Tanh"},
        ],
        "outputs": ["t", "b"],
    }
    code = to_python(spec)
    # x and out are read after the chain starts and h is read by name: the chain takes y
    assert "        y = self.a(x)\n        b = self.b(y)\n        h = self.h(out)\n" in code
    assert "        y = self.s(h, x)\n        t = self.t(y)\n        return t, b\n" in code
    built = build(spec, seed=SEED)
    exported = _load(code, "Wired")()
    exported.load_state_dict(built.model.state_dict(), strict=True)
    xs = _inputs(spec)
    with torch.no_grad():
        for ours, theirs in zip(built.model(**xs), exported(**xs), strict=True):
            assert torch.equal(ours, theirs)


def test_class_name_never_shadows_a_helper() -> None:
    spec = {
        "name": "Mean",
        "inputs": {"x": {"shape": [2, 3]}},
        "layers": [{"name": "avg", "type": "Mean", "args": {"dim": 1}}],
    }
    code = to_python(spec)
    assert "class Mean(nn.Module):" in code and "class MeanModel(nn.Module):" in code
    cls = _load(code, "MeanModel")
    x = torch.randn(2, 3)
    assert torch.equal(cls()(x), x.mean(dim=1))


def test_the_main_block_runs() -> None:
    code = to_python(PRESETS["lstm_tagger"].spec)
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        exec(compile(code, "<lstm_tagger>", "exec"), {"__name__": "__main__"})
    printed = buffer.getvalue()
    assert printed.startswith("LSTMTagger(\n  (word_embeddings): Embedding(9, 6)")
    assert printed.rstrip().endswith("torch.Size([5, 3])")
