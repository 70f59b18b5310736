"""A layer's args and inputs checked against the catalog, and the layer built from them.

The checks :func:`models.inference.infer` makes of each layer before measuring it on the
meta device: how many inputs it is wired to, their rank and dtype, its args (with "auto"
sizes filled from the input's shape); and :func:`construct`, which turns torch's refusal to
build a layer into a :class:`SpecError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from models.catalog import LayerType, Source
from models.catalog.helpers import rank_error
from models.errors import SpecError, fmt_shape


def check_input_count(name: str, entry: LayerType, refs: list[str]) -> None:
    lo, hi = entry.n_inputs
    if len(refs) < lo or (hi is not None and len(refs) > hi):
        want = str(lo) if lo == hi else f"{lo} to {hi}" if hi else f"at least {lo}"
        noun = "input" if hi == 1 else "inputs"
        names = f" ({', '.join(entry.input_names)})" if len(entry.input_names) > 1 else ""
        raise SpecError(
            "wrong_input_count",
            f"{name} ({entry.type}) takes {want} {noun}{names} but is wired to "
            f'{len(refs)}: {", ".join(refs)}. Set its "inputs" to {want} '
            f"{'name' if hi == 1 else 'names'} of model inputs or earlier layers.",
            layer=name,
            detail={"expected": [lo, hi], "actual": len(refs)},
        )


def resolve_args(name: str, entry: LayerType, given: Mapping[str, Any], srcs: list[Source]):
    args = entry.validate_args(name, given)
    autos = entry.auto_args(args)
    for arg_name in autos:
        value = entry.arg(arg_name).auto(srcs)
        if value is None:
            src = srcs[0]
            why = (
                f"{src.name} has no vocab to count"
                if entry.integer_input and not src.vocab
                else f"{src.gives(fmt_shape(src.shape))}"
            )
            also = f", or give {src.name} a vocab" if entry.integer_input else ""
            raise SpecError(
                "auto_unavailable",
                f"{name} cannot fill {arg_name} automatically: {why}. "
                f"Set {arg_name} to a number{also}.",
                layer=name,
                detail={"arg": arg_name},
            )
        args[arg_name] = value
    return args, autos


def check_inputs(name: str, entry: LayerType, srcs: list[Source]) -> None:
    """The input's rank and dtype, checked before any arg is filled from its shape."""
    if entry.ranks and len(srcs[0].shape) not in entry.ranks:
        raise rank_error(name, entry, srcs[0])
    for src in srcs:
        if entry.integer_input and src.dtype.is_floating_point:
            raise SpecError(
                "dtype_mismatch",
                f"{name} ({entry.type}) looks up token indices, but {src.name} gives "
                f"floating-point values. Feed it an integer (int64) input, e.g. a token sequence.",
                layer=name,
            )
        if not entry.integer_input and not src.dtype.is_floating_point:
            raise SpecError(
                "dtype_mismatch",
                f"{name} ({entry.type}) computes on real numbers, but {src.name} gives token "
                f"indices (int64). Put an Embedding before it.",
                layer=name,
            )


def construct(name: str, entry: LayerType, args: Mapping[str, Any], device: str) -> nn.Module:
    try:
        with torch.device(device):
            return entry.construct(args)
    except (ValueError, AssertionError, RuntimeError, TypeError, OverflowError) as exc:
        raise SpecError(
            "invalid_arg",
            f"{name} ({entry.type}) cannot be built with these args: {first_line(exc)}",
            layer=name,
        ) from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")
