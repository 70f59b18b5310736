"""The model spec: one JSON document that describes a model (see DESIGN.md).

:func:`parse_spec` turns untrusted JSON into a :class:`Spec` and checks its
structure (names, wiring, outputs); the layer args and shapes are checked by
``models.build`` against the catalog.
"""

from __future__ import annotations

import difflib
import keyword
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from torch import nn

from models.catalog.registry import MAX_SIZE, NAME_RE
from models.errors import SpecError

Dim = Annotated[StrictInt, Field(ge=1, le=MAX_SIZE)]
Word = Annotated[str, Field(min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=64)]

# Names a layer cannot take: they would shadow nn.Module's own attributes (methods, and the
# instance attributes set in __init__ such as ``training`` and ``_modules``), the attributes
# of models.build.SpecModel, or break the exported Python code.
SPEC_MODEL_ATTRS = frozenset(
    {"model_name", "input_names", "output_names", "plan", "bind", "run_plan"}
)
RESERVED = (
    frozenset(dir(nn.Module))
    | frozenset(vars(nn.Module()))
    | SPEC_MODEL_ATTRS
    | {"self", "torch", "nn", "F", "super", "math"}
)


class InputSpec(BaseModel):
    """A model input: its default shape, its dtype and, for token inputs, its vocabulary."""

    model_config = ConfigDict(extra="forbid")

    shape: Annotated[list[Dim], Field(min_length=1, max_length=6)]
    dtype: Literal["float32", "int64"] = "float32"
    vocab: Annotated[list[Word], Field(max_length=100_000)] | None = None


class LayerSpec(BaseModel):
    """One layer: its attribute name, its catalog type, its torch constructor args."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    type: Annotated[str, Field(min_length=1, max_length=64)]
    args: dict[str, Any] = Field(default_factory=dict)
    inputs: Annotated[list[Name], Field(min_length=1, max_length=8)] | None = None


class Spec(BaseModel):
    """A whole model: named inputs, ordered named layers, optional outputs."""

    model_config = ConfigDict(extra="forbid")

    name: Name = "Model"
    inputs: Annotated[dict[Name, InputSpec], Field(min_length=1, max_length=8)]
    layers: Annotated[list[LayerSpec], Field(max_length=10_000)]
    outputs: Annotated[list[Name], Field(min_length=1, max_length=16)] | None = None
    labels: Annotated[list[Word], Field(max_length=10_000)] | None = None

    def output_names(self) -> list[str]:
        return list(self.outputs) if self.outputs else [self.layers[-1].name]

    def layer_inputs(self, index: int) -> list[str]:
        """The names a layer reads: its own ``inputs``, else the previous layer or first input."""
        layer = self.layers[index]
        if layer.inputs:
            return list(layer.inputs)
        return [self.layers[index - 1].name] if index else [next(iter(self.inputs))]


def parse_spec(data: Spec | dict[str, Any], *, max_layers: int | None = None) -> Spec:
    """Validate untrusted JSON into a Spec and check names and wiring."""
    if isinstance(data, Spec):
        spec = data
    else:
        if not isinstance(data, dict):
            raise SpecError("invalid_spec", "A spec must be a JSON object with inputs and layers.")
        layers = data.get("layers")
        if max_layers is not None and isinstance(layers, list) and len(layers) > max_layers:
            from models.errors import LimitError

            raise LimitError(
                f"The spec has {len(layers)} layers; this playground allows at most "
                f"{max_layers}. Remove layers.",
                detail={"limit": max_layers, "actual": len(layers), "limit_key": "max_layers"},
            )
        try:
            spec = Spec.model_validate(data)
        except ValidationError as exc:
            raise SpecError("invalid_spec", _spec_message(exc), detail=_errors(exc)) from None
    check_structure(spec)
    return spec


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": [*e["loc"]], "problem": e["msg"]} for e in exc.errors()]


def _spec_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        parts.append(f"{where}: {err['msg']}")
    return "The spec is not valid: " + "; ".join(parts) + "."


def _check_name(name: str, what: str) -> None:
    if not NAME_RE.fullmatch(name) or keyword.iskeyword(name):
        raise SpecError(
            "invalid_name",
            f"'{name}' cannot name {what}: use letters, digits and underscores, starting with "
            f"a letter (it becomes a Python attribute, like conv1 or fc1).",
            layer=name if what == "a layer" else None,
        )
    if name in RESERVED:
        raise SpecError(
            "reserved_name",
            f"'{name}' is taken by nn.Module or by the exported code; pick another name for "
            f"{what} (e.g. {name}_1 or {name}_layer).",
            layer=name,
        )


def check_structure(spec: Spec) -> None:
    """Names are valid and unique; every layer reads inputs or earlier layers; outputs exist."""
    if not spec.layers:
        raise SpecError("empty_spec", "The spec has no layers; add at least one layer.")
    if not NAME_RE.fullmatch(spec.name) or keyword.iskeyword(spec.name):
        raise SpecError(
            "invalid_name",
            f"The model name '{spec.name}' must be a Python class name (e.g. LeNet5).",
        )
    for name in spec.inputs:
        _check_name(name, "an input")
    positions: dict[str, int] = {}
    for i, layer in enumerate(spec.layers):
        _check_name(layer.name, "a layer")
        if layer.name in spec.inputs:
            raise SpecError(
                "duplicate_name",
                f"The layer '{layer.name}' has the same name as a model input; rename one.",
                layer=layer.name,
            )
        if layer.name in positions:
            raise SpecError(
                "duplicate_name",
                f"Two layers are named '{layer.name}' (layers {positions[layer.name] + 1} and "
                f"{i + 1}); layer names must be unique: rename one (e.g. {layer.name}_{i + 1}).",
                layer=layer.name,
            )
        positions[layer.name] = i
    order = {name: i for i, layer in enumerate(spec.layers) for name in [layer.name]}
    for i, layer in enumerate(spec.layers):
        for ref in layer.inputs or ():
            _check_ref(spec, layer.name, ref, i, order)
    for out in spec.output_names():
        if out not in order and out not in spec.inputs:
            names = [*spec.inputs, *order]
            raise SpecError(
                "unknown_output",
                f"The outputs name '{out}', which is not a layer of the spec.{_near(out, names)} "
                f"Name layers or inputs: {_listing(names)}.",
                detail={"output": out},
            )
    if spec.labels is not None and not spec.labels:
        raise SpecError("invalid_spec", "labels, when given, must name at least one class.")


def _near(name: str, names: list[str]) -> str:
    match = difflib.get_close_matches(name, names, n=1)
    return f" Did you mean {match[0]}?" if match else ""


def _listing(names: list[str], most: int = 12) -> str:
    """``a, b, c`` (the first and last few when there are many)."""
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join([*names[: most // 2], "…", *names[-most // 2 :]])


def _check_ref(spec: Spec, layer: str, ref: str, index: int, order: dict[str, int]) -> None:
    if ref in spec.inputs:
        return
    if ref == layer:
        raise SpecError(
            "cycle",
            f"{layer} takes its own output as its input, which would be a cycle. "
            f"Wire it to a model input or an earlier layer.",
            layer=layer,
        )
    if ref not in order:
        known = [*spec.inputs, *(lay.name for lay in spec.layers[:index])]
        raise SpecError(
            "unknown_input",
            f"{layer} takes input '{ref}', which is neither a model input nor a layer."
            f"{_near(ref, known)} It can use: {_listing(known)}.",
            layer=layer,
            detail={"input": ref},
        )
    if order[ref] > index:
        raise SpecError(
            "forward_reference",
            f"{layer} takes input from {ref}, which comes after it in the spec. A layer can "
            f"only use model inputs and earlier layers: move {ref} above {layer}.",
            layer=layer,
            detail={"input": ref},
        )
