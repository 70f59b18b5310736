"""The layer registry: one entry per layer type, declared as data.

Each :class:`LayerType` names its torch class, its constructor args (typed, with
torch's defaults and valid ranges), how many inputs it takes, which shape it
expects, how a tuple output is split into the tensor passed on and the extras
kept, and an example that builds and runs. The API schema, the UI forms, the
code exporter and the tests all read this one table.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    create_model,
)
from torch import nn

from models.errors import SpecError

REQUIRED: Any = ...
MAX_SIZE = 2**31 - 1  # the largest size torch's int32-indexed kernels accept


@dataclass(frozen=True)
class Source:
    """What a layer receives on one of its inputs, as shape inference saw it."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype = torch.float32
    vocab: tuple[str, ...] | None = None
    note: str | None = None  # e.g. "16×5×5" for the output of a Flatten

    def gives(self, value: int | str) -> str:
        """``flat gives 400 (16×5×5)``: the phrase used in error messages."""
        note = f" ({self.note})" if self.note else ""
        return f"{self.name} gives {value}{note}"


AutoFn = Callable[[Sequence[Source]], Any]
CheckFn = Callable[[str, Mapping[str, Any], Sequence[Source]], None]


@dataclass(frozen=True)
class Arg:
    """One constructor argument: its torch name, type, default and range."""

    name: str
    kind: str  # int | float | bool | choice | ints | int_list | str
    default: Any = REQUIRED
    doc: str = ""
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False  # None is allowed (torch's "not set")
    n: int | None = None  # tuple length for "ints"
    auto: AutoFn | None = None  # how "auto" is filled from the inputs' shapes
    also: tuple[str, ...] = ()  # extra string values accepted (e.g. padding="same")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def annotation(self) -> Any:
        bounds = {
            k: v for k, v in (("ge", self.ge), ("gt", self.gt), ("le", self.le), ("lt", self.lt))
        }
        bounds = {k: v for k, v in bounds.items() if v is not None}
        if self.kind == "int":
            base: Any = Annotated[StrictInt, Field(**bounds)]
        elif self.kind == "float":
            base = Annotated[StrictFloat | StrictInt, Field(**bounds, allow_inf_nan=False)]
        elif self.kind == "bool":
            base = StrictBool
        elif self.kind == "choice":
            base = Literal[self.choices]
        elif self.kind == "str":
            base = Annotated[str, Field(max_length=64)]
        elif self.kind == "ints":
            item = Annotated[StrictInt, Field(**bounds)]
            lo, hi = (self.n, self.n) if self.n else (1, 8)
            base = item | Annotated[list[item], Field(min_length=lo, max_length=hi)]
        elif self.kind == "int_list":
            item = Annotated[StrictInt, Field(**bounds)]
            base = Annotated[list[item], Field(min_length=1, max_length=8)]
        else:  # pragma: no cover - a catalog bug, caught by the catalog tests
            raise ValueError(f"unknown arg kind {self.kind}")
        for extra in self.also:
            base = base | Literal[extra]
        if self.optional:
            base = base | None
        if self.auto is not None:
            base = base | Literal["auto"]
        return base

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "doc": self.doc}
        out["required"] = self.required
        if not self.required:
            out["default"] = self.default
        for key in ("ge", "gt", "le", "lt"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.choices:
            out["choices"] = list(self.choices)
        if self.n:
            out["length"] = self.n
        out["optional"] = self.optional
        out["auto"] = self.auto is not None
        if self.also:
            out["also"] = list(self.also)
        return out


@dataclass(frozen=True)
class Example:
    """Args and input shapes with which the layer builds and runs (tested for every entry)."""

    args: dict[str, Any]
    inputs: tuple[tuple[int, ...], ...]
    dtype: str = "float32"
    vocab: int | None = None  # upper bound of integer inputs


@dataclass
class LayerType:
    """A catalog entry: everything the engine, API, UI and exporter know about a layer type."""

    type: str
    category: str
    section: str
    doc: str
    args: tuple[Arg, ...]
    example: Example
    torch_class: type[nn.Module] | None = None
    factory: Callable[..., nn.Module] | None = (
        None  # when the constructor is not torch_class(**args)
    )
    torch_name: str = ""  # "torch.nn.Conv2d", or where a custom layer lives
    is_torch: bool = True
    n_inputs: tuple[int, int | None] = (1, 1)
    input_names: tuple[str, ...] = ("input",)
    layout: str = ""  # the input layout in words, e.g. "(N, C, H, W) or (C, H, W)"
    ranks: tuple[int, ...] | None = None
    checks: tuple[CheckFn, ...] = ()
    main_output: int | None = None  # index of the tensor passed on when the output is a tuple
    extras: tuple[str, ...] = ()  # names of the other parts of a tuple output
    call: Callable[[nn.Module, Sequence[torch.Tensor]], Any] | None = None
    call_code: Callable[[Sequence[str]], str] | None = None  # codegen of a non-plain call
    integer_input: bool = False  # takes token indices (Embedding)
    # For a layer that steps along a sequence (RNN, LSTM, GRU): the time axis of its first
    # input, given its args and the input's rank. Its output keeps that axis, and its cost
    # grows linearly with it, so shape inference measures one step and scales.
    time_axis: Callable[[Mapping[str, Any], int], int] | None = None
    # Args that stack copies of the same block (num_layers): cost and extras grow linearly
    # with each, so shape inference measures one and two copies and scales (models/scaling).
    depth_args: tuple[str, ...] = ()
    note: str = ""
    args_model: type[BaseModel] = field(init=False)

    def __post_init__(self) -> None:
        fields = {a.name: (a.annotation(), a.default) for a in self.args}
        self.args_model = create_model(
            f"{self.type}Args", __config__=ConfigDict(extra="forbid"), **fields
        )
        if not self.torch_name and self.torch_class is not None:
            self.torch_name = f"torch.nn.{self.torch_class.__name__}"

    # -- args -------------------------------------------------------------------------
    def arg(self, name: str) -> Arg:
        return next(a for a in self.args if a.name == name)

    def validate_args(self, layer: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Check args against their types and ranges; return them with defaults filled."""
        try:
            model = self.args_model.model_validate(dict(args))
        except ValidationError as exc:
            raise SpecError(
                "invalid_arg", _args_message(layer, self, exc), layer=layer, detail=_locs(exc)
            ) from None
        return model.model_dump()

    def auto_args(self, resolved: Mapping[str, Any]) -> list[str]:
        return [a.name for a in self.args if a.auto is not None and resolved.get(a.name) == "auto"]

    def construct(self, args: Mapping[str, Any]) -> nn.Module:
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in args.items()}
        if self.factory is not None:
            return self.factory(**kwargs)
        assert self.torch_class is not None
        return self.torch_class(**kwargs)

    # -- running ----------------------------------------------------------------------
    def forward(self, module: nn.Module, xs: Sequence[torch.Tensor]) -> Any:
        return self.call(module, xs) if self.call else module(*xs)

    def split(self, out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The tensor passed on, and the extras (h_n, c_n, attention weights) kept aside."""
        if self.main_output is None:
            return out, {}
        flat: list[Any] = []
        for part in out:
            flat.extend(part if isinstance(part, tuple) else (part,))
        main = flat.pop(self.main_output)
        extras = {n: t for n, t in zip(self.extras, flat, strict=False) if t is not None}
        return main, extras

    def describe(self) -> dict[str, Any]:
        lo, hi = self.n_inputs
        return {
            "type": self.type,
            "category": self.category,
            "section": self.section,
            "doc": self.doc,
            "torch": self.torch_name,
            "is_torch_class": self.is_torch,
            "note": self.note,
            "inputs": {"min": lo, "max": hi, "names": list(self.input_names)},
            "layout": self.layout,
            "integer_input": self.integer_input,
            "args": [a.describe() for a in self.args],
            "args_schema": self.args_model.model_json_schema(),
            "extras": list(self.extras),
            "example": {
                "args": self.example.args,
                "inputs": [list(s) for s in self.example.inputs],
                "dtype": self.example.dtype,
            },
        }


def _locs(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"arg": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()]


def _args_message(layer: str, entry: LayerType, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            names = [a.name for a in entry.args]
            near = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            parts.append(
                f"{entry.type} has no arg '{name}' ({hint}its args: {', '.join(names) or 'none'})"
            )
            continue
        if err["type"] == "missing":
            parts.append(f"{name} is required: {entry.arg(name).doc or 'set it'}")
            continue
        arg = next((a for a in entry.args if a.name == name), None)
        parts.append(f"{name}={err.get('input')!r} is not valid: {_expects(arg)}")
    seen: list[str] = []
    for p in parts:  # one line per arg even when several union branches failed
        if p not in seen:
            seen.append(p)
    return f"{layer} ({entry.type}): " + "; ".join(seen) + "."


def _expects(arg: Arg | None) -> str:
    if arg is None:
        return "check its type"
    words = {
        "int": "a whole number",
        "float": "a number",
        "bool": "true or false",
        "str": "a short text",
        "ints": f"a whole number or a list of {arg.n or 'some'} whole numbers",
        "int_list": "a list of whole numbers",
        "choice": "one of " + ", ".join(repr(c) for c in arg.choices),
    }
    text = words[arg.kind]
    limits = []
    for key, sym in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
        val = getattr(arg, key)
        if val is not None and not (key == "le" and val == MAX_SIZE):
            limits.append(f"{sym} {val:g}")
    if limits:
        text += " " + " and ".join(limits)
    if arg.le == MAX_SIZE:
        text += f" (at most {MAX_SIZE})"
    extra = [repr(x) for x in arg.also] + (["null"] if arg.optional else [])
    extra += ["'auto'"] if arg.auto else []
    if extra:
        text += ", or " + ", ".join(extra)
    return f"expected {text}"


# Always used with ``fullmatch``: ``match`` with a final ``$`` lets a trailing newline through
# ("Evil\n"), which breaks the exported code and the download filename.
NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
