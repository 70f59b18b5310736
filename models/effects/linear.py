"""The Linear layer by hand: ``y = x·Wᵀ + b``, each output worked out term by term.

For every row r of x (the leading dims flattened) and output unit j,
``y[r, j] = Σ_k x[r, k]·W[j, k] + b[j]``. The products are listed one by one (float32 values
multiplied in float64, which is exact), summed in float64 and the bias added (``y_by_hand``
is the same sums as one float64 matmul); torch's y
(``F.linear``, what ``nn.Linear.forward`` calls, in float32) differs from that only by
float32 rounding, reported as ``max_abs_diff``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import SpecError, fmt_shape

MAX_TERMS = 4096  # products listed in one answer; the rest is summarized
MAX_ROWS = 64  # rows of x worked out in one answer


def seeded_linear(in_features: int, out_features: int, *, bias: bool = True, seed: int = 0):
    """``torch.manual_seed(seed); nn.Linear(in_features, out_features, bias)``, in a forked RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Linear(in_features, out_features, bias=bias)


def linear_of(model: nn.Module, layer: str) -> nn.Linear:
    """The ``nn.Linear`` named ``layer`` in a built model (a spec model's layer)."""
    linears = [n for n, m in model.named_children() if isinstance(m, nn.Linear)]
    module = model._modules.get(layer)
    if not isinstance(module, nn.Linear):
        what = "no layer" if module is None else f"a {type(module).__name__}, not a Linear"
        choices = ", ".join(linears) if linears else "none: the model has no Linear layer"
        raise SpecError(
            "unknown_layer" if module is None else "invalid_arg",
            f"The model has {what} named '{layer}'; pick one of its Linear layers: {choices}.",
            layer=layer,
            detail={"linear_layers": linears},
        )
    return module


def by_hand(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    x: torch.Tensor,
    *,
    outputs: Sequence[int] | None = None,
    max_terms: int = MAX_TERMS,
) -> dict[str, Any]:
    """Work ``x·Wᵀ + b`` out by hand and compare it with torch's ``F.linear(x, W, b)``.

    ``x`` is (..., in_features). ``steps`` lists, for each row and each chosen output unit
    (``outputs``, default all) in order, the terms ``x[r, k]``, ``W[j, k]``, their products,
    the sum, the bias and the value, until ``max_terms`` products are listed
    (``truncated`` says when that cut the list short). ``y_by_hand`` covers every element.
    """
    w = weight.detach().to("cpu", torch.float32)
    b = None if bias is None else bias.detach().to("cpu", torch.float32)
    out_f, in_f = w.shape
    if x.ndim == 0 or x.shape[-1] != in_f:
        last = (
            "a scalar" if x.ndim == 0 else f"{fmt_shape(tuple(x.shape))} (last dim {x.shape[-1]})"
        )
        raise SpecError(
            "shape_mismatch",
            f"Linear({in_f}, {out_f}) takes x with {in_f} values in its last dim; x is {last}. "
            f"Send x of shape (rows, {in_f}).",
            detail={"expected_last_dim": in_f, "actual": list(x.shape)},
        )
    chosen = list(range(out_f)) if outputs is None else [int(j) for j in outputs]
    bad = [j for j in chosen if not 0 <= j < out_f]
    if bad:
        raise SpecError("invalid_arg", f"outputs must be unit indices in 0…{out_f - 1}; got {bad}")
    rows_n = x.numel() // in_f
    if rows_n > MAX_ROWS:
        raise SpecError(
            "invalid_input",
            f"x holds {rows_n} rows of {in_f} values; working by hand takes at most {MAX_ROWS}. "
            "Send fewer rows.",
        )
    x = x.to(torch.float32)
    with torch.no_grad():
        y = F.linear(x, w, b)
    rows = x.reshape(-1, in_f)
    x64, w64 = rows.double(), w.double()
    b64 = torch.zeros(out_f, dtype=torch.float64) if b is None else b.double()
    by_hand64 = x64 @ w64.T + b64  # (rows, out), in float64
    y_rows = y.reshape(-1, out_f)
    steps, listed, truncated = [], 0, False
    for r in range(rows.shape[0]):
        for j in chosen:
            if listed + in_f > max_terms:
                truncated = True
                break
            products = x64[r] * w64[j]
            total = float(products.sum())
            steps.append(
                {
                    "row": r,
                    "out": j,
                    "x": x64[r].tolist(),
                    "w": w64[j].tolist(),
                    "products": products.tolist(),
                    "sum": total,
                    "bias": float(b64[j]),
                    "value": total + float(b64[j]),
                    "torch": float(y_rows[r, j]),
                    "abs_diff": abs(total + float(b64[j]) - float(y_rows[r, j])),
                }
            )
            listed += in_f
        if truncated:
            break
    return {
        "in_features": in_f,
        "out_features": out_f,
        "formula": "y = x·Wᵀ + b",
        "weight": w,
        "bias": b,
        "x": x,
        "y": y,
        "y_by_hand": by_hand64.reshape(y.shape).float(),
        "max_abs_diff": float((by_hand64 - y_rows.double()).abs().max()),
        "steps": steps,
        "truncated": truncated,
        "rows": int(rows.shape[0]),
    }
