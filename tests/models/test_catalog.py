"""models.catalog: every entry builds, infers what torch gives, and equals torch's own class.

Parametrized over the whole catalog like timm's ``test_model_forward``: each entry's
example becomes a one-layer spec, which is inferred on the meta device, built on the
CPU with a seed and compared against the torch class built directly after the same
``torch.manual_seed`` (the oracle).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import resource
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from models.build import build, infer
from models.catalog import CATALOG, CATEGORIES, SECTIONS, LayerType, catalog_json, lookup
from models.errors import LimitError, SpecError
from models.limits import Limits

ENTRIES = list(CATALOG.values())
IDS = [e.type for e in ENTRIES]
Tensors = Sequence[torch.Tensor]


# -- helpers ------------------------------------------------------------------------------
def example_spec(entry: LayerType, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A one-layer spec from the entry's example; a multi-input layer reads every input."""
    ex = entry.example
    inputs: dict[str, Any] = {}
    for i, shape in enumerate(ex.inputs):
        inputs[f"x{i}"] = {"shape": list(shape), "dtype": ex.dtype}
        if ex.dtype == "int64":
            inputs[f"x{i}"]["vocab"] = [f"w{k}" for k in range(ex.vocab or 1)]
    layer: dict[str, Any] = {"name": "layer", "type": entry.type, "args": args or ex.args}
    if len(ex.inputs) > 1:
        layer["inputs"] = list(inputs)
    return {"name": f"One{entry.type}", "inputs": inputs, "layers": [layer]}


def example_inputs(entry: LayerType, seed: int = 0) -> list[torch.Tensor]:
    ex = entry.example
    gen = torch.Generator().manual_seed(seed)
    if ex.dtype == "int64":
        return [torch.randint(0, ex.vocab or 1, s, generator=gen) for s in ex.inputs]
    return [torch.randn(s, generator=gen) for s in ex.inputs]


@contextlib.contextmanager
def plain_cpu_kernels() -> Iterator[None]:
    """Run LSTM and attention on the plain ATen kernels that FlopCounterMode can see.

    On the CPU, LSTM goes to oneDNN and attention to a fused SDPA kernel, both invisible
    to FlopCounterMode (it reports 0 FLOPs for an LSTM). The meta device runs the plain
    kernels, so the fair comparison is against those.
    """
    before = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        torch.backends.mkldnn.enabled = before


def _transformer_layer_args(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in ("num_layers", "final_norm")}


def _encoder(args: dict[str, Any]) -> nn.Module:
    layer = nn.TransformerEncoderLayer(**_transformer_layer_args(args))
    return nn.TransformerEncoder(layer, args["num_layers"])


def _decoder(args: dict[str, Any]) -> nn.Module:
    layer = nn.TransformerDecoderLayer(**_transformer_layer_args(args))
    return nn.TransformerDecoder(layer, args["num_layers"])


# The oracle, written with torch only: how each layer is built and called in plain torch.
FACTORIES: dict[str, Callable[[dict[str, Any]], nn.Module]] = {
    "TransformerEncoder": _encoder,
    "TransformerDecoder": _decoder,
}
CALLS: dict[str, Callable[[nn.Module, Tensors], Any]] = {
    "MultiheadAttention": lambda m, xs: m(xs[0], xs[0], xs[0]),
}
# Layers that are not torch classes: their oracle is the tensor operation itself.
FUNCTIONAL: dict[str, Callable[[dict[str, Any], Tensors], torch.Tensor]] = {
    "MinPool2d": lambda a, xs: -F.max_pool2d(-xs[0], a["kernel_size"]),
    "Reshape": lambda a, xs: xs[0].reshape(a["shape"]),
    "Permute": lambda a, xs: xs[0].permute(a["dims"]),
    "Unsqueeze": lambda a, xs: xs[0].unsqueeze(a["dim"]),
    "Select": lambda a, xs: xs[0].select(a["dim"], a["index"]),
    "Mean": lambda a, xs: xs[0].mean(a["dim"]),
    "Add": lambda a, xs: torch.add(xs[0], xs[1]),
    "Concat": lambda a, xs: torch.cat(list(xs), dim=a["dim"]),
}


def _split(out: Any) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Torch's own tuple outputs: (output, (h_n, c_n)) or (output, attn_weights)."""
    if isinstance(out, torch.Tensor):
        return out, []
    main, rest = out
    return main, list(rest) if isinstance(rest, tuple) else [rest]


# -- every entry --------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_example_infers_the_shape_params_and_flops_torch_gives(entry: LayerType) -> None:
    spec = example_spec(entry)
    inference = infer(spec)
    info = inference.layers[0]
    model = build(spec, seed=0).model.eval()
    layer = model.get_submodule("layer")
    xs = example_inputs(entry)
    with torch.no_grad():
        out = model(*xs)
        main, extras = entry.split(entry.forward(layer, xs))
    assert torch.equal(out, main)
    assert list(out.shape) == info.output_shape == inference.outputs["layer"]
    assert info.output_dtype == str(out.dtype).removeprefix("torch.")
    assert {k: list(v.shape) for k, v in extras.items()} == info.extras
    assert list(info.extras) == list(entry.extras)
    assert torch.isfinite(out).all()
    for extra in extras.values():
        assert torch.isfinite(extra).all()
    assert info.params == sum(p.numel() for p in model.parameters()) == inference.total_params
    assert info.activation_bytes == sum(t.numel() * 4 for t in (out, *extras.values()))
    model.train()
    with plain_cpu_kernels(), FlopCounterMode(display=False) as counter:
        model(*xs)
    assert info.flops == counter.get_total_flops() == inference.total_flops


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_built_layer_equals_torch_class_built_directly(entry: LayerType) -> None:
    args = dict(entry.example.args)
    xs = example_inputs(entry)
    result = build(example_spec(entry), seed=0)
    built = result.model.eval()
    with torch.no_grad():
        got = built(*xs)
    if entry.type in FUNCTIONAL:
        assert not entry.is_torch
        assert torch.equal(got, FUNCTIONAL[entry.type](args, xs))
        return
    assert entry.is_torch and entry.torch_class is not None
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}  # as written
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nn.Transformer: enable_nested_tensor is True, but ...
        ref = FACTORIES[entry.type](args) if entry.factory else entry.torch_class(**args)
    assert type(ref) is entry.torch_class
    assert entry.torch_name == f"torch.nn.{entry.torch_class.__name__}"
    layer = built.get_submodule("layer")
    assert repr(layer) == repr(ref)
    want, have = ref.state_dict(), layer.state_dict()
    assert list(want) == list(have)
    for key, value in want.items():
        assert torch.equal(value, have[key]), key
    ref.eval()
    with torch.no_grad():
        call = CALLS.get(entry.type, lambda m, ts: m(*ts))
        expected, extras = _split(call(ref, xs))
    assert torch.equal(got, expected)
    info = result.inference.layers[0]
    assert [list(t.shape) for t in extras] == list(info.extras.values())


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_auto_args_resolve_to_what_torch_needs(entry: LayerType) -> None:
    autos = [a.name for a in entry.args if a.auto is not None]
    ex_args = entry.example.args
    for name in autos:
        assert name in ex_args, f"{entry.type}'s example should set its auto arg {name}"
        inference = infer(example_spec(entry, {**ex_args, name: "auto"}))
        resolved = inference.layers[0].args[name]
        want = ex_args[name]
        assert resolved == want, f"{entry.type}.{name}: auto gave {resolved}, torch needs {want}"
        assert inference.layers[0].auto == [name]
        assert inference.spec.layers[0].args == ex_args


def _has_signature(entry: LayerType) -> bool:
    """nn.RNN/LSTM/GRU take (*args, **kwargs); the repr check above covers their defaults."""
    if entry.torch_class is None or entry.factory is not None:
        return False
    params = inspect.signature(entry.torch_class).parameters.values()
    return not any(p.kind is p.VAR_POSITIONAL for p in params)


# Args torch requires to which the catalog gives nn.Transformer's default, for convenience.
CONVENIENCE_DEFAULTS = {("TransformerEncoderLayer", "nhead"), ("TransformerDecoderLayer", "nhead")}


@pytest.mark.parametrize("entry", [e for e in ENTRIES if _has_signature(e)], ids=lambda e: e.type)
def test_defaults_are_the_torch_constructor_defaults(entry: LayerType) -> None:
    params = inspect.signature(entry.torch_class).parameters
    for arg in entry.args:
        assert arg.name in params, f"{entry.type} has no constructor arg {arg.name}"
        torch_default = params[arg.name].default
        if arg.required:
            assert torch_default is inspect.Parameter.empty, f"{entry.type}.{arg.name}"
        elif torch_default is inspect.Parameter.empty:
            assert (entry.type, arg.name) in CONVENIENCE_DEFAULTS, f"{entry.type}.{arg.name}"
        elif callable(torch_default):  # activation=F.relu, which torch also takes as "relu"
            assert arg.default == torch_default.__name__, f"{entry.type}.{arg.name}"
        else:
            assert arg.default == torch_default, f"{entry.type}.{arg.name}"


def test_transformer_stack_defaults_match_torch() -> None:
    """TransformerEncoder/Decoder are built by a factory: check its args one by one."""
    for type_name in ("TransformerEncoder", "TransformerDecoder"):
        layer_type = CATALOG[f"{type_name}Layer"]
        stack = CATALOG[type_name]
        n = len(layer_type.args)
        assert [a.describe() for a in stack.args[:n]] == [a.describe() for a in layer_type.args]
        assert [a.name for a in stack.args[n:]] == ["num_layers", "final_norm"]
    assert CATALOG["TransformerEncoder"].arg("num_layers").default == 6  # nn.Transformer's
    assert CATALOG["Transformer"].arg("d_model").default == 512


# -- the catalog as data ------------------------------------------------------------------
def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


TYPES: dict[str, Callable[[Any], bool]] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
}


def accepts(schema: dict[str, Any], value: Any, root: dict[str, Any]) -> bool:
    """A small JSON Schema check: $ref, anyOf, const, enum, type, bounds, items, lengths."""
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return any(accepts(s, value, root) for s in schema["anyOf"])
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "type" in schema and not TYPES[schema["type"]](value):
        return False
    checks = {
        "minimum": lambda b: value >= b,
        "maximum": lambda b: value <= b,
        "exclusiveMinimum": lambda b: value > b,
        "exclusiveMaximum": lambda b: value < b,
        "minItems": lambda b: len(value) >= b,
        "maxItems": lambda b: len(value) <= b,
        "maxLength": lambda b: len(value) <= b,
    }
    if not all(check(schema[key]) for key, check in checks.items() if key in schema):
        return False
    if "items" in schema:
        return all(accepts(schema["items"], v, root) for v in value)
    return True


def test_catalog_json_is_json_and_lists_every_entry() -> None:
    data = json.loads(json.dumps(catalog_json()))
    assert [layer["type"] for layer in data["layers"]] == list(CATALOG)
    assert data["categories"] == CATEGORIES and data["sections"] == SECTIONS


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_args_schema_is_a_json_schema_accepting_the_example(entry: LayerType) -> None:
    schema = entry.describe()["args_schema"]
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    props = schema.get("properties", {})
    assert list(props) == [a.name for a in entry.args]
    assert sorted(schema.get("required", [])) == sorted(a.name for a in entry.args if a.required)
    assert accepts(schema, entry.example.args, schema)
    for name, value in entry.example.args.items():
        assert accepts(props[name], value, schema), f"{entry.type}.{name}={value!r}"
    for arg in entry.args:
        if not arg.required:
            assert accepts(props[arg.name], arg.default, schema), f"default of {arg.name}"
        if arg.auto is not None:
            assert accepts(props[arg.name], "auto", schema)
        if arg.kind == "int":
            assert not accepts(props[arg.name], "3", schema)
            assert not accepts(props[arg.name], True, schema)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_entry_has_doc_category_and_section(entry: LayerType) -> None:
    assert entry.doc.strip().endswith("."), f"{entry.type} needs a one-line doc"
    assert "\n" not in entry.doc
    assert entry.category in CATEGORIES
    assert entry.section in SECTIONS
    for arg in entry.args:
        assert arg.doc.strip(), f"{entry.type}.{arg.name} has no doc"
    if not entry.is_torch:
        assert entry.torch_name and not entry.torch_name.startswith("torch.nn.")
    assert entry.example.dtype in ("float32", "int64")
    assert (entry.example.dtype == "int64") == entry.integer_input
    lo, hi = entry.n_inputs
    assert lo <= len(entry.example.inputs) <= (hi or lo)


def test_names_unique_case_insensitively() -> None:
    lowered = [name.lower() for name in CATALOG]
    assert len(set(lowered)) == len(lowered)
    assert all(key == entry.type for key, entry in CATALOG.items())


def test_every_tutorial_section_with_layers_is_covered() -> None:
    sections = {e.section for e in ENTRIES}
    for wanted in ("linear", "convolution", "recurrent", "transformer", "pooling"):
        assert wanted in sections
    for wanted in ("normalization", "dropout", "activations"):
        assert wanted in sections


# -- lookup -------------------------------------------------------------------------------
def test_lookup_finds_an_entry() -> None:
    assert lookup("Conv2d") is CATALOG["Conv2d"]


@pytest.mark.parametrize("typed", ["conv2d", "CONV2D", "nn.Conv2d", "torch.nn.Conv2d"])
def test_lookup_suggests_the_right_casing(typed: str) -> None:
    with pytest.raises(SpecError) as info:
        lookup(typed, "conv1")
    err = info.value
    assert err.code == "unknown_layer_type" and err.layer == "conv1"
    assert "Did you mean Conv2d?" in err.message
    assert err.detail["suggestions"] == ["Conv2d"]


def test_lookup_of_an_unknown_type() -> None:
    with pytest.raises(SpecError) as info:
        lookup("Conv4d")
    err = info.value
    assert err.code == "unknown_layer_type"
    assert "'Conv4d'" in err.message and f"the {len(CATALOG)} supported types" in err.message
    assert "Conv2d" in err.detail["suggestions"]


# -- meta inference allocates nothing -----------------------------------------------------
BIG = {
    "name": "Big",
    "inputs": {"x": {"shape": [1, 100_000]}},
    "layers": [
        {"name": "fc", "type": "Linear", "args": {"in_features": "auto", "out_features": 10_000}}
    ],
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def test_a_billion_parameters_are_refused_before_anything_is_allocated() -> None:
    with pytest.raises(LimitError) as info:
        infer(BIG)
    err = info.value
    assert err.code == "limit_exceeded" and err.layer == "fc"
    assert "1,000,010,000" in err.message and err.detail["limit_key"] == "max_params"


def test_a_billion_parameters_are_measured_on_meta_without_memory() -> None:
    limits = Limits(max_params=2 * 10**9, max_flops=10**12)
    before = _rss_bytes()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    inference = infer(BIG, limits=limits)
    grown = _rss_bytes() - before
    peak_grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak_before
    assert inference.total_params == 100_000 * 10_000 + 10_000
    assert inference.total_flops == 2 * 100_000 * 10_000
    assert grown < 200 * 2**20 and peak_grown < 200 * 2**20  # 4 GB if it were allocated
