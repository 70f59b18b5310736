"""Building blocks for catalog entries: arg builders, "auto" rules and shape checks.

Checks raise SpecError with a message that says what to change, quoting what the
previous layer gives (``fc1 expects 576 input features, but flat gives 400 (16×5×5)``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from models.catalog.registry import (
    MAX_SIZE,
    REQUIRED,
    Arg,
    AutoFn,
    CheckFn,
    LayerType,
    Source,
)
from models.errors import SpecError, fmt_shape


# -- reusable arg builders ----------------------------------------------------------------
def size(name: str, doc: str, *, default: Any = REQUIRED, auto: AutoFn | None = None) -> Arg:
    return Arg(name, "int", default, doc, ge=1, le=MAX_SIZE, auto=auto, optional=default is None)


def flag(name: str, default: bool, doc: str) -> Arg:
    return Arg(name, "bool", default, doc)


def prob(name: str, default: float, doc: str) -> Arg:
    return Arg(name, "float", default, doc, ge=0.0, le=1.0)


# -- auto functions: fill a size from the input's shape --------------------------------------
def last_dim(index: int = 0) -> AutoFn:
    return lambda srcs: srcs[index].shape[-1] if srcs[index].shape else None


def channel_dim(spatial: int) -> AutoFn:
    """The channel count of an (N, C, *spatial) or unbatched (C, *spatial) input."""

    def auto(srcs: Sequence[Source]) -> int | None:
        shape = srcs[0].shape
        return shape[-(spatial + 1)] if len(shape) > spatial else None

    return auto


# -- checks: say in plain words what to change -------------------------------------------
def expects_size(
    arg: str,
    at: int | Callable[[tuple[int, ...]], int],
    noun: str,
    *,
    src: int = 0,
    auto: bool = True,
    shared: bool = False,
) -> CheckFn:
    """The layer's ``arg`` must equal dimension ``at`` of its input number ``src``.

    ``shared``: the arg also sizes the first input (a transformer's d_model for src and tgt),
    so the fix is in the layers before this input, not in the arg.
    """
    advice = " or use 'auto'" if auto else ""

    def check(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
        if src >= len(srcs) or not srcs[src].shape:
            return
        source = srcs[src]
        dim = at(source.shape) if callable(at) else at
        have = source.shape[dim]
        want = args[arg]
        if isinstance(want, int) and want != have:
            fix = (
                f"Its inputs must all have {arg}={want} features: change the layers before "
                f"{source.name} so that it gives {want}."
                if shared
                else f"Set {arg} to {have}{advice}."
            )
            raise SpecError(
                "shape_mismatch",
                f"{layer} expects {want} {noun}, but {source.gives(have)}. {fix}",
                layer=layer,
                detail={
                    "arg": arg,
                    "expected": want,
                    "actual": have,
                    "input_shape": [*source.shape],
                },
            )

    return check


def divides(total: str, parts: str, what: str) -> CheckFn:
    """``args[total]`` must split into ``args[parts]`` equal shares (heads, groups)."""

    def check(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
        n, k = args[total], args[parts]
        if isinstance(n, int) and isinstance(k, int) and n % k:
            divisors = [d for d in range(1, n + 1) if n % d == 0]
            shown = ", ".join(map(str, divisors[:8])) + (", …" if len(divisors) > 8 else "")
            raise SpecError(
                "invalid_arg",
                f"{layer} splits {total}={n} into {parts}={k} {what}, but {n} is not divisible "
                f"by {k}. Set {parts} to a divisor of {n} ({shown}), or change {total}.",
                layer=layer,
                detail={"arg": parts, total: n, parts: k},
            )

    return check


def dim_in_range(arg: str, *, extra: int = 0) -> CheckFn:
    """``args[arg]`` must index a dimension of the input (``extra``: one more, for unsqueeze)."""

    def check(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
        dim, rank = args[arg], max(len(srcs[0].shape) + extra, 1)  # a scalar takes dim 0 or -1
        if isinstance(dim, int) and not -rank <= dim < rank:
            raise SpecError(
                "shape_mismatch",
                f"{layer} has {arg}={dim}, but {srcs[0].gives(fmt_shape(srcs[0].shape))}, "
                f"whose dimensions are numbered 0 to {rank - 1} (or -{rank} to -1). "
                f"Set {arg} to one of those.",
                layer=layer,
                detail={"arg": arg, "value": dim, "input_shape": [*srcs[0].shape]},
            )

    return check


def rank_error(layer: str, entry: LayerType, src: Source) -> SpecError:
    ranks = " or ".join(str(r) for r in entry.ranks or ())
    layout = f" {entry.layout}" if entry.layout else ""
    return SpecError(
        "wrong_rank",
        f"{layer} ({entry.type}) takes a {ranks}-D input{layout}, but {src.name} gives "
        f"{fmt_shape(src.shape)} ({len(src.shape)}-D). Add a Flatten, Reshape or Unsqueeze "
        f"before it, or change the input shape.",
        layer=layer,
        detail={"expected_rank": list(entry.ranks or ()), "input_shape": [*src.shape]},
    )
