"""Shape inference on the meta device: check a spec and measure it before allocating.

:func:`infer` walks the spec on the ``meta`` device: it checks every layer's args
against the catalog, fills ``"auto"`` sizes, checks shapes, and measures each
layer's output shape, parameters, activation bytes and FLOPs without allocating
any memory, stopping at the first cost over a limit.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from models import layer_memo, scaling
from models.catalog import LayerType, Source, lookup
from models.cost import WorkCounter
from models.errors import SpecError, fmt_shape
from models.layer_checks import (
    check_input_count,
    check_inputs,
    construct,
    first_line,
    resolve_args,
)
from models.limits import DEFAULT_LIMITS, Deadline, Limits
from models.spec import LayerSpec, Spec, parse_spec

DTYPES = {"float32": torch.float32, "int64": torch.int64}
# ``warnings.catch_warnings`` swaps process-wide state: two threads measuring at once (the
# device's and the anonymous validation's) would leave each other's filters behind.
MEASURING = threading.Lock()


@dataclass
class LayerInfo:
    """What shape inference found for one layer."""

    name: str
    type: str
    args: dict[str, Any]
    inputs: list[str]
    output_shape: list[int]
    output_dtype: str
    extras: dict[str, list[int]]
    params: int
    activation_bytes: int
    flops: int
    auto: list[str] = field(default_factory=list)
    work: int = 0  # models.cost's estimate (about 1 ns of one CPU core per unit)


@dataclass
class Inference:
    """The resolved spec ("auto" filled) and the cost of every layer, found on the meta device."""

    spec: Spec
    layers: list[LayerInfo]
    input_shapes: dict[str, list[int]]
    outputs: dict[str, list[int]]
    total_params: int
    total_activation_bytes: int
    total_flops: int
    warnings: list[str]
    total_work: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.model_dump(exclude_none=True),
            "layers": [asdict(info) for info in self.layers],
            "input_shapes": self.input_shapes,
            "outputs": self.outputs,
            "total_params": self.total_params,
            "total_activation_bytes": self.total_activation_bytes,
            "total_flops": self.total_flops,
            "total_work": self.total_work,
            "warnings": self.warnings,
        }


def infer(
    spec: Spec | dict[str, Any],
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    limits: Limits = DEFAULT_LIMITS,
    deadline: Deadline | None = None,
) -> Inference:
    """Check and measure a spec on the meta device; nothing is allocated.

    A ``deadline`` is checked after every layer (``DeadlineExceeded`` once it has passed).

    A SpecError raised here carries ``partial``: the LayerInfo of every layer inferred
    before the failing one, so an editor can still show their shapes.
    """
    spec = parse_spec(spec, max_layers=limits.max_layers)
    shapes = {n: list((input_shapes or {}).get(n, inp.shape)) for n, inp in spec.inputs.items()}
    walk = _Walk(spec, shapes, limits)
    try:
        for i, layer in enumerate(spec.layers):
            walk.step(i, layer)
            if deadline is not None:
                deadline.check(layer.name)
    except SpecError as exc:
        exc.partial = list(walk.infos)
        raise
    resolved = spec.model_copy(update={"layers": walk.resolved})
    outputs = {n: list(walk.sources[n].shape) for n in resolved.output_names()}
    return Inference(
        resolved,
        walk.infos,
        shapes,
        outputs,
        walk.params,
        walk.bytes,
        walk.flops,
        walk.warnings,
        walk.work,
    )


class _Walk:
    """The state of one inference: what each name gives, and the running totals."""

    def __init__(self, spec: Spec, shapes: dict[str, list[int]], limits: Limits) -> None:
        self.spec, self.limits = spec, limits
        self.sources, self.tensors, self.bytes = _meta_inputs(spec, shapes, limits)
        self.resolved: list[LayerSpec] = []
        self.infos: list[LayerInfo] = []
        self.warnings: list[str] = []
        self.params = self.flops = self.work = 0

    def step(self, index: int, layer: LayerSpec) -> None:
        entry = lookup(layer.type, layer.name)
        refs = self.spec.layer_inputs(index)
        check_input_count(layer.name, entry, refs)
        srcs = [self.sources[r] for r in refs]
        check_inputs(layer.name, entry, srcs)  # before "auto", which reads the input's shape
        args, autos = resolve_args(layer.name, entry, layer.args, srcs)
        for check in entry.checks:
            check(layer.name, args, srcs)
        xs = [self.tensors[r] for r in refs]
        memo_key = layer_memo.key(entry.type, args, xs)
        measured = layer_memo.recall(memo_key)
        if measured is None:
            measured = self._measure(layer.name, entry, args, xs, srcs)
            layer_memo.remember(memo_key, measured)
        else:
            self._add_params(layer.name, measured.params)
        for w in measured.warnings:
            text = f"{layer.name}: {w}"
            if text not in self.warnings:
                self.warnings.append(text)
        limits = self.limits
        self.flops += measured.flops
        limits.check(
            "The forward pass's FLOPs",
            self.flops,
            limits.max_flops,
            "max_flops",
            layer=layer.name,
            hint="Use smaller layers or inputs. ",
        )
        self.work += measured.work
        limits.check(
            "The forward pass's estimated work",
            self.work,
            limits.max_work,
            "max_work",
            layer=layer.name,
            hint="Use smaller inputs, pooling windows or sequences (the work counts every "
            "pooling window element, element written and operator call, see models/cost.py). ",
        )
        limits.check_time(self.work, layer=layer.name)
        out_bytes = _numel(measured.shape) * measured.dtype.itemsize
        nbytes = out_bytes + sum(_numel(shape) * dt.itemsize for _, shape, dt in measured.extras)
        self.bytes += nbytes
        limits.check(
            "Activation memory (bytes)",
            self.bytes,
            limits.max_activation_bytes,
            "max_activation_bytes",
            layer=layer.name,
            hint="Use smaller inputs. ",
        )
        main = measured.output()
        self.tensors[layer.name] = main
        note = _note(entry, args, srcs)
        self.sources[layer.name] = Source(layer.name, tuple(main.shape), main.dtype, note=note)
        plain = _plain(args, layer.args, autos)
        self.resolved.append(layer.model_copy(update={"args": plain}))
        self.infos.append(
            LayerInfo(
                layer.name,
                entry.type,
                plain,
                refs,
                list(main.shape),
                _dtype_name(main.dtype),
                {name: list(shape) for name, shape, _ in measured.extras},
                measured.params,
                nbytes,
                measured.flops,
                autos,
                measured.work,
            )
        )

    def _add_params(self, name: str, params: int) -> None:
        self.params += params
        self.limits.check(
            "The model's parameter count",
            self.params,
            self.limits.max_params,
            "max_params",
            layer=name,
            hint="Use smaller layers. ",
        )

    def _measure(
        self,
        name: str,
        entry: LayerType,
        args: dict[str, Any],
        xs: list[torch.Tensor],
        srcs: list[Source],
    ) -> layer_memo.Measured:
        """Build the layer on the meta device and run it: its output, extras and costs.

        A layer that steps along a sequence runs one step, a stacked one one and two copies,
        and the measurement is scaled (models/scaling.py): on the meta device each step or
        copy costs milliseconds, so a 3,200-step LSTM took 91 s to infer.
        """
        axis = entry.time_axis(args, xs[0].ndim) if entry.time_axis and xs else None
        steps = int(xs[0].shape[axis]) if axis is not None else 1
        if steps > 1:
            shape = list(xs[0].shape)
            shape[axis] = 1
            short = [torch.empty(shape, dtype=xs[0].dtype, device="meta"), *xs[1:]]
            one = self._measure_deep(name, entry, args, short, srcs)
            scaled = scaling.along_time(one, axis, steps) if one is not None else None
            if scaled is not None:
                self._add_params(name, scaled.params)
                return scaled
        deep = self._measure_deep(name, entry, args, xs, srcs)
        if deep is not None:
            self._add_params(name, deep.params)
            return deep
        return self._measure_once(name, entry, args, xs, srcs, count=True)

    def _measure_deep(self, name, entry, args, xs, srcs) -> layer_memo.Measured | None:
        """The layer measured with each depth arg at 1 and 2 and scaled to its value (None:
        not deep, or copies that change the layout); its parameters are not counted yet."""
        deep = [a for a in entry.depth_args if isinstance(args.get(a), int) and args[a] > 1]
        if not deep:
            return self._measure_once(name, entry, args, xs, srcs) if entry.time_axis else None
        shallow = {**args, **dict.fromkeys(deep, 1)}
        one = total = self._measure_once(name, entry, shallow, xs, srcs)
        for arg in deep:
            two = self._measure_once(name, entry, {**shallow, arg: 2}, xs, srcs)
            total = scaling.along_depth(total, one, two, args[arg] - 1)
            if total is None:
                return None
        return total

    def _measure_once(
        self,
        name: str,
        entry: LayerType,
        args: dict[str, Any],
        xs: list[torch.Tensor],
        srcs: list[Source],
        count: bool = False,
    ) -> layer_memo.Measured:
        with MEASURING, warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            module = construct(name, entry, args, device="meta")
            module.eval()  # shapes as in inference; train-only refusals surface at run time
            params = sum(p.numel() for p in module.parameters())
            if count:
                self._add_params(name, params)  # over the limit: refused before the forward
            with WorkCounter() as work:  # FLOPs too: FlopCounterMode's formulas, see cost.py
                out = _meta_forward(name, entry, module, xs, srcs)
        main, extras = entry.split(out)
        messages: list[str] = []
        for w in seen:
            if str(w.message) not in messages:
                messages.append(str(w.message))
        flops = work.flops
        return layer_memo.Measured(
            params=params,
            flops=flops,
            work=work.work(flops, modules=sum(1 for _ in module.modules())),
            shape=tuple(main.shape),
            stride=tuple(main.stride()),
            dtype=main.dtype,
            extras=tuple((k, tuple(v.shape), v.dtype) for k, v in extras.items()),
            warnings=tuple(messages),
        )


def _meta_inputs(spec: Spec, shapes: dict[str, list[int]], limits: Limits):
    sources: dict[str, Source] = {}
    tensors: dict[str, torch.Tensor] = {}
    total = 0
    for name, inp in spec.inputs.items():
        shape = shapes[name]
        numel = _numel(shape)
        limits.check(
            f"Input {name}'s element count",
            numel,
            limits.max_input_elements,
            "max_input_elements",
            hint="Use a smaller input shape. ",
        )
        if inp.dtype == "int64":
            limits.check(
                f"Input {name}'s token count",
                numel,
                limits.max_sequence_length,
                "max_sequence_length",
                hint="Use a shorter sequence. ",
            )
        if inp.vocab is not None:
            limits.check(
                f"Input {name}'s vocabulary size", len(inp.vocab), limits.max_vocab, "max_vocab"
            )
        dtype = DTYPES[inp.dtype]
        sources[name] = Source(name, tuple(shape), dtype, tuple(inp.vocab) if inp.vocab else None)
        tensors[name] = torch.empty(shape, dtype=dtype, device="meta")
        total += numel * tensors[name].element_size()
    return sources, tensors, total


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _plain(args: dict[str, Any], given: Mapping[str, Any], autos: list[str]) -> dict[str, Any]:
    """The args to keep in the resolved spec: those given, plus the "auto" ones filled."""
    return {k: v for k, v in args.items() if k in given or k in autos}


def _meta_forward(name: str, entry: LayerType, module: nn.Module, xs: list, srcs: list[Source]):
    try:
        return entry.forward(module, xs)
    except (RuntimeError, ValueError, IndexError, AssertionError, TypeError) as exc:
        given = " and ".join(s.gives(fmt_shape(s.shape)) for s in srcs)
        raise SpecError(
            "shape_mismatch",
            f"{name} ({entry.type}) cannot take its input: {given}. Torch says: "
            f"{first_line(exc)}. Change {name}'s args or the layers before it.",
            layer=name,
            detail={"input_shapes": [list(s.shape) for s in srcs]},
        ) from None


def _note(entry: LayerType, args: Mapping[str, Any], srcs: list[Source]) -> str | None:
    """For a Flatten, the dimensions it merged (``16×5×5``), quoted in later errors."""
    if entry.type != "Flatten" or not srcs[0].shape:
        return None
    shape = srcs[0].shape
    start, end = args["start_dim"] % len(shape), args["end_dim"] % len(shape)
    merged = shape[start : end + 1]
    return fmt_shape(merged) if len(merged) > 1 else None
