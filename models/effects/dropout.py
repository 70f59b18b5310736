"""Dropout: N passes of the same input through torch's own layer, with each pass's mask.

In training mode ``nn.Dropout(p)`` zeroes each element with probability p and multiplies the
survivors by 1/(1−p), so the expected value is unchanged; ``nn.Dropout1d``/``nn.Dropout2d``
zero whole channels. In eval mode the layer is the identity.

The passes run under ``torch.manual_seed(seed)`` inside a forked RNG (the caller's random
state is left alone), so they equal ``torch.manual_seed(seed); [drop(x) for _ in range(N)]``
in plain torch. Each pass's mask is torch's own noise: the RNG state is rewound and the
same layer is run on ``ones_like(x)`` (the draws depend on the shape only), which gives
``mask / (1 − p)``. p = 1 is refused although torch accepts it: nothing survives and the
scale 1/(1−p) does not exist.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from models.effects import check_cost
from models.errors import SpecError, fmt_shape

Layer = Literal["Dropout", "Dropout1d", "Dropout2d"]
LAYERS: tuple[str, ...] = ("Dropout", "Dropout1d", "Dropout2d")
RANKS = {
    "Dropout": (None, "any shape"),
    "Dropout1d": ((2, 3), "(N, C, L) or (C, L)"),
    "Dropout2d": ((4,), "(N, C, H, W)"),
}


def check_p(p: float) -> None:
    """p must be in [0, 1): the probability that an element is zeroed."""
    if not isinstance(p, int | float) or not 0 <= p < 1:
        raise SpecError(
            "invalid_arg",
            f"p is the probability of zeroing an element and must be in [0, 1); got {p}. "
            "(p = 1 would zero everything and leave no scale 1/(1−p) to show.)",
            detail={"arg": "p", "value": p},
        )


def _check_shape(layer: str, x: torch.Tensor) -> None:
    if layer not in LAYERS:
        raise SpecError("invalid_arg", f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    ranks, layout = RANKS[layer]
    if ranks is not None and x.ndim not in ranks:
        hint = (
            " (for a 3-D input use Dropout1d, which reads it as (N, C, L))" if x.ndim == 3 else ""
        )
        raise SpecError(
            "input_shape_mismatch",
            f"{layer} takes {layout}; the input is {fmt_shape(tuple(x.shape))} "
            f"(rank {x.ndim}){hint}",
        )


def dropout(
    x: torch.Tensor,
    p: float = 0.5,
    *,
    layer: Layer = "Dropout",
    passes: int = 2,
    mode: Literal["train", "eval"] = "train",
    seed: int = 0,
    max_elements: int | None = None,
) -> dict[str, Any]:
    """Run ``passes`` forward passes of ``x`` through ``layer(p)`` in ``mode``.

    Returns the input, ``scale`` (1/(1−p)), per pass ``{"output", "mask", "zero_fraction"}``
    (mask: 1 kept, 0 zeroed; zero_fraction: the share of mask zeros), their mean, whether
    every survivor equals x/(1−p) (``survivors_scaled``; ``max_scaling_error`` is float
    rounding only: torch multiplies by 1/(1−p)), whether dropped elements are 0, whether any
    two passes differ, and whether every pass equals the input (eval mode).
    """
    check_p(p)
    _check_shape(layer, x)
    if passes < 1:
        raise SpecError("invalid_arg", "passes must be at least 1")
    check_cost(f"{passes} dropout passes", 2 * passes * x.numel(), max_elements)
    module: nn.Module = getattr(nn, layer)(p)
    module.train(mode == "train")
    ones = torch.ones_like(x)
    results = []
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(passes):
            before = torch.get_rng_state()
            out = module(x)
            after = torch.get_rng_state()
            torch.set_rng_state(before)
            noise = module(ones)  # the same draws: mask / (1 − p)
            torch.set_rng_state(after)
            mask = noise != 0
            results.append((out, mask))
    scale = 1.0 / (1.0 - p)
    expected = x / (1.0 - p) if mode == "train" else x
    errors = [(out - expected)[mask].abs().max() for out, mask in results if bool(mask.any())]
    zero_fractions = [1.0 - float(mask.float().mean()) for _, mask in results]
    outs = [out for out, _ in results]
    return {
        "layer": layer,
        "torch_call": f"nn.{layer}(p={p})",
        "p": p,
        "mode": mode,
        "seed": seed,
        "scale": scale if mode == "train" else 1.0,
        "input": x,
        "passes": [
            {"output": out, "mask": mask.to(torch.uint8), "zero_fraction": zf}
            for (out, mask), zf in zip(results, zero_fractions, strict=True)
        ],
        "zero_fractions": zero_fractions,
        "mean_zero_fraction": sum(zero_fractions) / len(zero_fractions),
        "expected_zero_fraction": p if mode == "train" else 0.0,
        "max_scaling_error": float(torch.stack(errors).max()) if errors else 0.0,
        "survivors_scaled": all(
            torch.allclose(out[mask], expected[mask], rtol=1e-6, atol=1e-7) for out, mask in results
        ),
        "dropped_are_zero": all(bool((out[~mask] == 0).all()) for out, mask in results),
        "passes_differ": any(not torch.equal(outs[0], o) for o in outs[1:]),
        "identity": all(torch.equal(o, x) for o in outs),
    }
