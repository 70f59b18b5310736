"""Run inputs through a built model and capture every layer's output.

Layer outputs are kept by the model's own forward (:meth:`SpecModel.run_plan`), which hands
each wanted layer's raw output, what a forward hook on it would see, to the probe: no hooks,
so each layer's ``__call__`` stays on torch's fast path. For attention,
:func:`attention_hooks` asks torch for the weights per head: a forward pre-hook on each
``nn.MultiheadAttention`` (a MultiheadAttention layer, or the ``self_attn`` /
``multihead_attn`` inside a transformer layer) sets ``need_weights=True`` and
``average_attn_weights=False``, and a forward hook keeps ``output[1]``; the handles are always
removed (like timm's ``FeatureHooks``).

In eval mode ``nn.TransformerEncoderLayer`` normally takes a fused fast path
(``torch._transformer_encoder_layer_fwd``) that never calls ``self_attn``. Torch itself
turns that path off while any forward (pre-)hook is attached to the layer or one of its
submodules (``why_not_sparsity_fast_path = "forward pre-/hooks are attached to the module"``
in ``torch/nn/modules/transformer.py``), so the attention hooks are enough: no process-wide
switch such as ``torch.backends.mha.set_fastpath_enabled`` is flipped (it would race between
worker threads). :func:`probe` checks afterwards that every attention hook fired.

:func:`probe` runs the model (eval or train mode, seeded dropout) and returns tensors left on
the model's device; :func:`describe` encodes them for JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from models.build import SpecModel
from models.catalog import CATALOG
from models.errors import SpecError
from models.limits import Deadline
from models.run_gradients import GradientResult, RunGradients, backward, leaf_inputs
from models.stats import tensor_stats_many
from models.tensors import Encoding, encode

TRANSFORMER_TYPES = frozenset(
    {
        "Transformer",
        "TransformerEncoder",
        "TransformerEncoderLayer",
        "TransformerDecoder",
        "TransformerDecoderLayer",
    }
)
Mode = Literal["eval", "train"]


@dataclass
class Activation:
    """One layer's captured output: the tensor passed on, and its extras.

    ``extras`` holds the other parts of a tuple output (LSTM ``h_n`` and ``c_n``, GRU/RNN
    ``h_n``, MultiheadAttention ``attn_weights`` per head) and, for transformer layers, the
    attention weights per head of each attention submodule as ``attn.<submodule path>``.
    """

    name: str
    type: str
    tensor: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class ProbeResult:
    """The model's outputs by output name, the captured activations by layer, the mode."""

    outputs: dict[str, torch.Tensor]
    activations: dict[str, Activation]
    mode: str
    gradients: GradientResult | None = None  # when the run asked for them


@dataclass
class Capture:
    """What a probe saw: each wanted layer's raw output (kept by ``SpecModel.run_plan``), and
    the attention weights per head (kept by the hooks of :func:`attention_hooks`).

    ``attention[layer][path]`` is the weights of the ``nn.MultiheadAttention`` at ``path``
    inside ``layer`` (``""`` for a MultiheadAttention layer itself), shape (N, heads, L, S)
    or (heads, L, S) for unbatched input; ``expected`` lists every (layer, path) hooked.
    """

    outputs: dict[str, Any] = field(default_factory=dict)
    attention: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    expected: list[tuple[str, str]] = field(default_factory=list)

    def missing_attention(self) -> list[str]:
        """The attention modules hooked whose weights never arrived (a fused path ran)."""
        return [
            f"{layer}.{path}".rstrip(".")
            for layer, path in self.expected
            if path not in self.attention.get(layer, {})
        ]


def _check_names(model: SpecModel, names: Iterable[str]) -> list[str]:
    layers = [name for name, _, _ in model.plan]
    wanted = list(dict.fromkeys(names))
    unknown = [n for n in wanted if n not in layers]
    if unknown:
        raise SpecError(
            "unknown_layer",
            f"The model has no layer {', '.join(map(repr, unknown))}; capture one of its "
            f"layers: {', '.join(layers)}.",
            layer=str(unknown[0]),
            detail={"unknown": [str(n) for n in unknown], "layers": layers},
        )
    return wanted


def attention_modules(type_name: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The ``nn.MultiheadAttention`` modules whose weights a layer of this type exposes."""
    if type_name == "MultiheadAttention":
        return [("", module)]
    if type_name in TRANSFORMER_TYPES:
        return [(p, m) for p, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)]
    return []


def _want_weights(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    return args, {**kwargs, "need_weights": True, "average_attn_weights": False}


@contextmanager
def attention_hooks(model: SpecModel, names: Iterable[str]) -> Iterator[Capture]:
    """Hook the attention modules of the named spec layers for one forward pass; the handles
    are always removed.

    Yields a :class:`Capture` whose ``attention`` fills while the model runs (its
    ``outputs`` are for the caller to fill). An unknown layer name raises
    ``SpecError("unknown_layer")`` before any hook is registered.
    """
    wanted = _check_names(model, names)
    types = {name: type_name for name, type_name, _ in model.plan}
    capture = Capture(outputs=dict.fromkeys(wanted))
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def keep_weights(name: str, path: str):
        def hook(_module: nn.Module, _args: tuple, output: Any) -> None:
            capture.attention.setdefault(name, {})[path] = output[1]

        return hook

    try:
        for name in wanted:
            for path, attn in attention_modules(types[name], model._modules[name]):
                handles.append(attn.register_forward_pre_hook(_want_weights, with_kwargs=True))
                handles.append(attn.register_forward_hook(keep_weights(name, path)))
                capture.expected.append((name, path))
        yield capture
    finally:
        for handle in handles:
            handle.remove()


# -- probe ----------------------------------------------------------------------------------
def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _check_inputs(model: SpecModel, inputs: Mapping[str, torch.Tensor]) -> None:
    expected = list(model.input_names)
    missing = [n for n in expected if n not in inputs]
    unknown = [n for n in inputs if n not in expected]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if unknown:
            parts.append(f"unknown {', '.join(map(repr, unknown))}")
        raise SpecError(
            "invalid_input",
            f"The model takes the inputs {', '.join(expected)}; the request has "
            f"{' and '.join(parts)}. Give exactly one tensor per model input.",
            detail={"expected": expected, "missing": missing, "unknown": [str(u) for u in unknown]},
        )
    for name in expected:
        if not isinstance(inputs[name], torch.Tensor):
            raise SpecError(
                "invalid_input",
                f"Input {name} must be a tensor, not {type(inputs[name]).__name__}.",
            )


@contextmanager
def _in_mode(model: nn.Module, training: bool) -> Iterator[None]:
    """``model.train(training)`` for the block; every module's own mode is put back after.

    Nothing is touched when the model is already in that mode (the usual case: the worker
    keeps models in eval), since ``train()`` walks every module.
    """
    modules = list(model.modules())
    before = [m.training for m in modules]
    if all(t == training for t in before):
        yield
        return
    model.train(training)
    try:
        yield
    finally:
        for module, was in zip(modules, before, strict=True):
            if module.training != was:
                module.training = was


def _seeded_rng(device: torch.device, seed: int | None):
    """A forked RNG (the caller's global state is restored afterwards) seeded with ``seed``."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    return torch.random.fork_rng(devices=devices, enabled=seed is not None)


def _seed(device: torch.device, seed: int) -> None:
    torch.random.default_generator.manual_seed(seed)  # what torch.manual_seed does for the CPU
    if device.type == "cuda":
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)  # only the model's device: the one forked


def probe(
    model: SpecModel,
    inputs: Mapping[str, torch.Tensor],
    *,
    mode: Mode = "eval",
    capture: Literal["all"] | Sequence[str] = "all",
    seed: int | None = None,
    deadline: Deadline | None = None,
    gradients: RunGradients | None = None,
) -> ProbeResult:
    """Run ``inputs`` through ``model`` under ``torch.no_grad()`` and capture activations.

    With ``gradients`` the same forward runs with autograd on and one backward follows
    (``models.run_gradients.backward``): each captured layer's gradient comes back too.

    The model is put in ``mode`` for the run and every module is given back the mode it was
    in. As in torch, a train-mode run updates BatchNorm's running statistics. With a
    ``seed`` the run's random draws (dropout masks) are seeded inside a forked RNG, so the
    same seed gives the same activations and the caller's global RNG is left alone. Inputs
    are moved to the model's device; the tensors returned stay there. A ``deadline`` is
    checked between layers (``models.limits.Deadline``).
    """
    if mode not in ("eval", "train"):
        raise SpecError("invalid_mode", f"mode must be 'eval' or 'train', not {mode!r}.")
    _check_inputs(model, inputs)
    if isinstance(capture, str):
        if capture != "all":
            raise SpecError(
                "invalid_capture",
                f"capture must be 'all' or a list of layer names, not {capture!r}.",
            )
        names = [name for name, _, _ in model.plan]
    else:
        names = list(capture)
    device = model_device(model)
    xs = {n: inputs[n].to(device) for n in model.input_names}
    xs = leaf_inputs(xs) if gradients is not None else xs
    grads = None
    with (
        _in_mode(model, mode == "train"),
        torch.set_grad_enabled(gradients is not None),
        _seeded_rng(device, seed),
        attention_hooks(model, names) as cap,
    ):
        if seed is not None:
            _seed(device, seed)
        out = model.run_plan(dict(xs), keep=cap.outputs, deadline=deadline)
        if gradients is not None:
            grads = backward(model, xs, out, cap.outputs, gradients)
    missing = cap.missing_attention()
    if missing:  # a torch whose fused path ignores hooks: a bug to report, not a user error
        raise RuntimeError(f"attention weights of {', '.join(missing)} were not captured")
    outs = out if isinstance(out, tuple) else (out,)
    types = {name: type_name for name, type_name, _ in model.plan}
    activations = {}
    for name in names:
        main, extras = CATALOG[types[name]].split(cap.outputs[name])
        for path, weights in cap.attention.get(name, {}).items():
            if path:
                extras[f"attn.{path}"] = weights
        activations[name] = Activation(name, types[name], main, extras)
    return ProbeResult(dict(zip(model.output_names, outs, strict=True)), activations, mode, grads)


# -- JSON -----------------------------------------------------------------------------------
def describe(
    result: ProbeResult,
    *,
    encoding: Encoding = "f16",
    max_elements: int | None = None,
    bins: int = 30,
    stats: bool = True,
    inputs: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """The JSON-ready form of a probe: payloads (``models.tensors.encode``) and statistics.

    ``{"mode", "outputs": {name: payload}, "activations": {layer: {"type", "tensor",
    "stats", "extras": {name: {"tensor", "stats"}}}}}``, and ``"inputs": {name: {"tensor",
    "stats"}}`` when ``inputs`` are given (the tensors fed to the probe); without ``stats``
    the "stats" keys are left out. Statistics: ``tensor_stats_many``, one call for every
    tensor (the small ones together). A tensor that is both an output and a layer's
    activation is encoded once, its payload shared.
    """
    described = [
        t for act in result.activations.values() for t in (act.tensor, *act.extras.values())
    ]
    described += (inputs or {}).values()
    encoded: dict[int, dict[str, Any]] = {}

    def payload(t: torch.Tensor) -> dict[str, Any]:
        """Each tensor encoded once: the model's output is also its last layer's."""
        if id(t) not in encoded:
            encoded[id(t)] = encode(t, encoding, max_elements)
        return encoded[id(t)]

    # each layer's tensor, then its extras, layer by layer: the order of ``described``
    payloads = iter([payload(t) for t in described])
    summaries = iter(tensor_stats_many(described, bins=bins) if stats else ())

    def entry(**rest: Any) -> dict[str, Any]:
        out = {**rest, "tensor": next(payloads)}
        if stats:
            out["stats"] = next(summaries)
        return out

    activations = {}
    for name, act in result.activations.items():
        activations[name] = entry(type=act.type)
        activations[name]["extras"] = {key: entry() for key in act.extras}
    out = {
        "mode": result.mode,
        "outputs": {n: payload(t) for n, t in result.outputs.items()},
        "activations": activations,
    }
    if inputs is not None:
        out["inputs"] = {name: entry() for name in inputs}
    return out
