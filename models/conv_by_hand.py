"""Convolution by hand, as CNN Explainer shows it: one output cell of a Conv2d, unrolled.

For output channel ``c`` at ``(row, col)`` the cell is ``sum(patch * kernel) + bias`` where the
patch is the (padded, dilated, strided) window of the layer's input that the kernel covers,
over the input channels of ``c``'s group. Every number is computed by torch; the tests check
the sum against ``F.conv2d``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.errors import SpecError


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_by_hand(
    conv: nn.Conv2d, x: torch.Tensor, channel: int, row: int, col: int
) -> dict[str, Any]:
    """Unroll one output cell of ``conv`` on its input ``x`` (1×C×H×W or C×H×W)."""
    if not isinstance(conv, nn.Conv2d):
        raise SpecError("not_a_conv", "Convolution by hand needs a Conv2d layer.")
    if isinstance(conv.padding, str):
        raise SpecError("not_a_conv", "Convolution by hand needs numeric padding, not 'same'.")
    if x.dim() == 4:
        if x.shape[0] != 1:
            raise SpecError("invalid_input", "Convolution by hand reads one sample (batch 1).")
        x = x[0]
    x = x.detach().float()
    w = conv.weight.detach().float()
    out_ch = w.shape[0]
    (kh, kw), (sh, sw) = _pair(conv.kernel_size), _pair(conv.stride)
    (ph, pw), (dh, dw) = _pair(conv.padding), _pair(conv.dilation)
    if conv.padding_mode != "zeros":
        raise SpecError("not_a_conv", "Convolution by hand shows zero padding only.")
    padded = F.pad(x, (pw, pw, ph, ph))
    out_h = (padded.shape[1] - dh * (kh - 1) - 1) // sh + 1
    out_w = (padded.shape[2] - dw * (kw - 1) - 1) // sw + 1
    for name, v, hi in (("channel", channel, out_ch), ("row", row, out_h), ("col", col, out_w)):
        if not 0 <= v < hi:
            raise SpecError(
                "invalid_request",
                f"{name} {v} is outside the map (0 to {hi - 1}).",
                detail={"field": name},
            )
    group_size = w.shape[1]
    g = channel // (out_ch // conv.groups)
    rows = torch.arange(kh) * dh + row * sh
    cols = torch.arange(kw) * dw + col * sw
    chans = torch.arange(g * group_size, (g + 1) * group_size)
    patch = padded[chans][:, rows][:, :, cols]
    kernel = w[channel]
    products = patch * kernel
    total = products.sum()
    bias = float(conv.bias.detach()[channel]) if conv.bias is not None else 0.0
    with torch.no_grad():
        value = float(conv(x.unsqueeze(0).to(conv.weight.dtype))[0, channel, row, col])
    return {
        "channel": channel,
        "row": row,
        "col": col,
        "in_channels": chans.tolist(),
        "window": {"rows": (rows - ph).tolist(), "cols": (cols - pw).tolist()},
        "patch": patch.tolist(),
        "kernel": kernel.tolist(),
        "products": products.tolist(),
        "sum": float(total),
        "bias": bias,
        "result": float(total) + bias,
        "value": value,
    }
