"""Spec -> a readable, self-contained Python file with an ``nn.Module`` class.

The class reads like the tutorial's hand-written ones: ``__init__`` builds the layers in
spec order (``self.conv1 = nn.Conv2d(1, 6, 5)``) and ``forward`` calls them one line
each. Construction order and args match ``models.build`` exactly, so the exported class
built after ``torch.manual_seed(S)`` holds the same weights as ``build(spec, seed=S)``.
Helper layers that torch lacks (``Add``, ``Unsqueeze`` …) are pasted in from
``models.layers``: the file runs without this package.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from torch import nn

from models.build import Inference, infer
from models.catalog import LayerType, lookup
from models.layers import HELPERS
from models.spec import Spec, parse_spec

LINE = 100
INDENT = "    "


@dataclass
class _Call:
    """A call expression to render, split over lines ruff-style when too long."""

    func: str
    args: list[str | _Call]

    def flat(self) -> str:
        return f"{self.func}({', '.join(_flat(a) for a in self.args)})"


def _flat(item: str | _Call) -> str:
    return item if isinstance(item, str) else item.flat()


def _render(item: str | _Call, indent: str, prefix: str = "", suffix: str = "") -> list[str]:
    """``prefix + item + suffix`` at ``indent``, split like ``ruff format`` when too long."""
    one = f"{indent}{prefix}{_flat(item)}{suffix}"
    if len(one) <= LINE or isinstance(item, str) or not item.args:
        return [one]
    inner = indent + INDENT
    joined = ", ".join(_flat(a) for a in item.args)
    head, tail = f"{indent}{prefix}{item.func}(", f"{indent}){suffix}"
    if len(inner) + len(joined) <= LINE:
        return [head, inner + joined, tail]
    body = [line for a in item.args for line in _render(a, inner, suffix=",")]
    return [head, *body, tail]


def _literal(value: Any) -> str:
    """A Python literal in the style ruff writes: double quotes, lists as tuples."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        items = [_literal(v) for v in value]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
    return repr(value)


def _accepts_positional(cls: type, names: Sequence[str]) -> bool:
    """Whether ``cls(*values)`` binds ``names`` in order (RNN's ``*args`` does)."""
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
        return True
    return [p.name for p in params[: len(names)]] == list(names)


def _arg_list(entry: LayerType, args: dict[str, Any], cls: type, skip: Sequence[str] = ()) -> list:
    """Required args positionally in catalog order; the others by keyword when not default."""
    out: list[str | _Call] = []
    required = [a.name for a in entry.args if a.required and a.name not in skip]
    positional = _accepts_positional(cls, required)
    for arg in entry.args:
        if arg.name in skip:
            continue
        value = args[arg.name]
        if arg.required:
            out.append(_literal(value) if positional else f"{arg.name}={_literal(value)}")
        elif value != arg.default or type(value) is not type(arg.default):
            out.append(f"{arg.name}={_literal(value)}")
    return out


def _class_ref(cls: type) -> str:
    return f"nn.{cls.__name__}" if getattr(nn, cls.__name__, None) is cls else cls.__name__


def _constructor(entry: LayerType, args: dict[str, Any]) -> _Call:
    """The expression that builds the layer, as ``LayerType.construct`` does."""
    cls = cast(type, entry.torch_class)  # every catalog entry names its class
    if entry.factory is None:
        return _Call(_class_ref(cls), _arg_list(entry, args, cls))
    # TransformerEncoder/Decoder: mirror catalog/transformer.py make_encoder / make_decoder.
    layer_cls = getattr(nn, cls.__name__ + "Layer")
    layer = _Call(_class_ref(layer_cls), _arg_list(entry, args, layer_cls, skip=_STACK_ARGS))
    stack: list[str | _Call] = [layer, f"num_layers={args['num_layers']}"]
    if args["final_norm"]:
        eps = _literal(args["layer_norm_eps"])
        stack.append(_Call("norm=nn.LayerNorm", [_literal(args["d_model"]), f"eps={eps}"]))
    return _Call(_class_ref(cls), stack)


_STACK_ARGS = ("num_layers", "final_norm")


def _helpers(spec: Spec) -> list[type]:
    used: list[type] = []
    for layer in spec.layers:
        entry = lookup(layer.type, layer.name)
        cls = entry.torch_class
        if not entry.is_torch and cls in HELPERS and cls not in used:
            used.append(cls)
    return used


def _explicit(spec: Spec) -> set[str]:
    """Layers read by name (a later layer's ``inputs``, or the outputs): they keep a variable."""
    names = {ref for layer in spec.layers for ref in layer.inputs or ()}
    names |= set(spec.outputs or ())
    return names - set(spec.inputs)


def _chain_variable(spec: Spec, explicit: set[str]) -> str:
    """The variable a chain of layers reuses: ``x`` unless that would overwrite a live value."""
    candidates = ["x", "out", "h", "y", *(f"x{k}" for k in range(len(spec.layers) + 1))]
    return next(var for var in candidates if _works(spec, explicit, var))


def _works(spec: Spec, explicit: set[str], chain: str) -> bool:
    """Simulate forward(): every read must find its value still in its variable."""
    holder = {name: name for name in spec.inputs}
    where = {name: name for name in spec.inputs}
    if chain in explicit:
        return False
    for i, layer in enumerate(spec.layers):
        for ref in spec.layer_inputs(i):
            if holder.get(where[ref]) != ref:
                return False
        var = layer.name if layer.name in explicit else chain
        holder[var] = layer.name
        where[layer.name] = var
    return all(holder.get(where[n]) == n for n in spec.output_names())


def _shape(shape: Sequence[int]) -> str:
    return str(tuple(int(s) for s in shape))


def _tuple_note(entry: LayerType) -> str:
    extras = entry.extras
    rest = extras[0] if len(extras) == 1 else f"({', '.join(extras)})"
    return f"returns (output, {rest})"


def _forward_line(
    name: str, var: str, entry: LayerType, refs: list[str], comment: str
) -> list[str]:
    call = entry.call_code(refs) if entry.call_code else ", ".join(refs)
    index = "" if entry.main_output is None else f"[{entry.main_output}]"
    indent = INDENT * 2
    lines = _render(_Call(f"self.{name}", call.split(", ")), indent, f"{var} = ", index)
    if not comment:
        return lines
    if len(lines) == 1 and len(lines[0]) + len(comment) + 4 <= LINE:
        return [f"{lines[0]}  # {comment}"]
    return [f"{indent}# {comment}", *lines]


def _embedding_rows(spec: Spec, input_name: str) -> int:
    """How many token ids an int input without a vocabulary may take: its Embeddings' rows."""
    rows = [
        int(layer.args["num_embeddings"])
        for i, layer in enumerate(spec.layers)
        if lookup(layer.type).type == "Embedding" and input_name in spec.layer_inputs(i)
    ]
    return min(rows, default=1)


def _example(spec: Spec, class_name: str) -> list[str]:
    """A ``__main__`` block that prints the model and its output shape on random inputs.

    The inputs are passed inline, so no input name can shadow ``model``, ``print`` or ``torch``.
    """
    makers: list[str | _Call] = []
    for name, inp in spec.inputs.items():
        if inp.dtype == "int64":
            high = len(inp.vocab) if inp.vocab else _embedding_rows(spec, name)
            makers.append(f"torch.randint(0, {high}, {_shape(inp.shape)})")
        else:
            makers.append(f"torch.randn({', '.join(str(d) for d in inp.shape)})")
    lines = ["", "", 'if __name__ == "__main__":', f"{INDENT}model = {class_name}()"]
    lines.append(f"{INDENT}print(model)")
    lines += _render(_Call("model", makers), INDENT, "out = ")
    several = len(spec.output_names()) > 1
    lines.append(f"{INDENT}print({'[o.shape for o in out]' if several else 'out.shape'})")
    return lines


def _has_auto(spec: Spec) -> bool:
    return any(value == "auto" for layer in spec.layers for value in layer.args.values())


def to_python(spec: Spec | dict[str, Any], inference: Inference | None = None) -> str:
    """A self-contained Python file defining the spec's model as an ``nn.Module`` class.

    With an ``inference`` (from ``models.build.infer``), its resolved spec is exported and
    each line of ``forward`` carries the output shape as a comment. A spec that still has
    ``"auto"`` args is resolved with ``infer`` first.
    """
    if inference is not None:
        spec = inference.spec
    else:
        spec = parse_spec(spec)
        if _has_auto(spec):
            spec = infer(spec).spec
    helpers = _helpers(spec)
    taken = {cls.__name__ for cls in helpers} | {"torch", "nn", "print"}
    class_name = spec.name if spec.name not in taken else f"{spec.name}Model"

    out = [f'"""{spec.name}, exported from the PyTorch Model Playground."""', ""]
    out += ["import torch", "from torch import nn", ""]
    for cls in helpers:
        out += ["", inspect.getsource(cls).rstrip(), ""]
    out += ["", f"class {class_name}(nn.Module):", f"{INDENT}def __init__(self):"]
    out.append(f"{INDENT * 2}super().__init__()")
    for layer in spec.layers:
        entry = lookup(layer.type, layer.name)
        args = entry.validate_args(layer.name, layer.args)
        out += _render(_constructor(entry, args), INDENT * 2, f"self.{layer.name} = ")

    shapes = {info.name: info.output_shape for info in inference.layers} if inference else {}
    out += ["", f"{INDENT}def forward(self, {', '.join(spec.inputs)}):"]
    if inference is not None:
        for name, shape in inference.input_shapes.items():
            out.append(f"{INDENT * 2}# {name}: {_shape(shape)}")
    explicit = _explicit(spec)
    chain = _chain_variable(spec, explicit)
    where = {name: name for name in spec.inputs}
    for i, layer in enumerate(spec.layers):
        entry = lookup(layer.type, layer.name)
        refs = [where[r] for r in spec.layer_inputs(i)]
        var = layer.name if layer.name in explicit else chain
        where[layer.name] = var
        notes = [_shape(shapes[layer.name])] if layer.name in shapes else []
        if entry.main_output is not None:
            notes.append(_tuple_note(entry))
        out += _forward_line(layer.name, var, entry, refs, "; ".join(notes))
    out.append(f"{INDENT * 2}return {', '.join(where[n] for n in spec.output_names())}")
    out += _example(spec, class_name)
    return "\n".join(out) + "\n"
