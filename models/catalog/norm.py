"""Normalization and dropout layers."""

from __future__ import annotations

from torch import nn

from models.catalog.helpers import channel_dim, divides, expects_size, flag, prob, size
from models.catalog.registry import Arg, Example, LayerType, Source

EPS = Arg("eps", "float", 1e-5, "added to the variance for numerical stability", gt=0)
MOMENTUM = Arg(
    "momentum",
    "float",
    0.1,
    "weight of each batch in the running statistics (null: average)",
    ge=0,
    le=1,
    optional=True,
)


def _batchnorm(n: int) -> LayerType:
    cls = getattr(nn, f"BatchNorm{n}d")
    layout = "(N, C) or (N, C, L)" if n == 1 else "(N, C, H, W)"
    shape = (3, 4, 4) if n == 1 else (2, 3, 4, 4)
    return LayerType(
        cls.__name__,
        "normalization",
        "normalization",
        "Centres each channel on mean 0 and std 1 over the batch; learns a scale and shift.",
        (
            size("num_features", "channels C of the input", auto=lambda s: _channels(s[0])),
            EPS,
            MOMENTUM,
            flag("affine", True, "learn a per-channel weight and bias"),
            flag("track_running_stats", True, "keep running mean/var for eval mode"),
        ),
        Example({"num_features": shape[1]}, (shape,)),
        torch_class=cls,
        layout=layout,
        ranks=(2, 3) if n == 1 else (4,),
        checks=(expects_size("num_features", 1, "channels"),),
    )


def _channels(src: Source) -> int | None:
    return src.shape[1] if len(src.shape) >= 2 else None


def _auto_normalized_shape(srcs):
    return [srcs[0].shape[-1]] if srcs[0].shape else None


def _check_normalized_shape(layer, args, srcs):
    from models.errors import SpecError, fmt_shape

    want = args["normalized_shape"]
    if want == "auto":
        return
    want = [want] if isinstance(want, int) else list(want)
    have = list(srcs[0].shape[-len(want) :]) if len(srcs[0].shape) >= len(want) else None
    if have != want:
        last = fmt_shape(srcs[0].shape[-len(want) :])
        raise SpecError(
            "shape_mismatch",
            f"{layer} normalizes over the last dimensions {fmt_shape(want)}, but "
            f"{srcs[0].gives(fmt_shape(srcs[0].shape))}, whose last dimensions are {last}. "
            f"Set normalized_shape to {list(srcs[0].shape[-len(want) :])} or use 'auto'.",
            layer=layer,
        )


ENTRIES = [
    _batchnorm(1),
    _batchnorm(2),
    LayerType(
        "LayerNorm",
        "normalization",
        "normalization",
        "Normalizes each sample over its last dimensions (no batch statistics).",
        (
            Arg(
                "normalized_shape",
                "ints",
                ...,
                "the trailing dimensions to normalize over",
                ge=1,
                le=2**31 - 1,
                auto=_auto_normalized_shape,
            ),
            EPS,
            flag("elementwise_affine", True, "learn a weight and bias per element"),
            flag("bias", True, "learn the bias (with elementwise_affine)"),
        ),
        Example({"normalized_shape": [4]}, ((2, 3, 4),)),
        torch_class=nn.LayerNorm,
        layout="(*, normalized_shape)",
        checks=(_check_normalized_shape,),
    ),
    LayerType(
        "GroupNorm",
        "normalization",
        "normalization",
        "Normalizes groups of channels within each sample.",
        (
            size("num_groups", "groups to split the channels into (must divide num_channels)"),
            size("num_channels", "channels C of the input", auto=lambda s: _channels(s[0])),
            EPS,
            flag("affine", True, "learn a per-channel weight and bias"),
        ),
        Example({"num_groups": 2, "num_channels": 4}, ((2, 4, 5, 5),)),
        torch_class=nn.GroupNorm,
        layout="(N, C, *)",
        ranks=(2, 3, 4, 5),
        checks=(
            expects_size("num_channels", 1, "channels"),
            divides("num_channels", "num_groups", "groups"),
        ),
    ),
    LayerType(
        "InstanceNorm2d",
        "normalization",
        "normalization",
        "Normalizes each channel of each sample over its H×W map.",
        (
            size("num_features", "channels C of the input", auto=channel_dim(2)),
            EPS,
            MOMENTUM,
            flag("affine", False, "learn a per-channel weight and bias"),
            flag("track_running_stats", False, "keep running mean/var for eval mode"),
        ),
        Example({"num_features": 3}, ((2, 3, 5, 5),)),
        torch_class=nn.InstanceNorm2d,
        layout="(N, C, H, W) or (C, H, W)",
        ranks=(3, 4),
        checks=(expects_size("num_features", -3, "channels"),),
    ),
    LayerType(
        "Dropout",
        "dropout",
        "dropout",
        "In training, zeroes each element with probability p and scales the rest by 1/(1-p).",
        (prob("p", 0.5, "probability of zeroing an element"),),
        Example({"p": 0.4}, ((2, 8),)),
        torch_class=nn.Dropout,
    ),
    LayerType(
        "Dropout2d",
        "dropout",
        "dropout",
        "In training, zeroes whole channels with probability p and scales the rest by 1/(1-p).",
        (prob("p", 0.5, "probability of zeroing a channel"),),
        Example({"p": 0.5}, ((2, 4, 5, 5),)),
        torch_class=nn.Dropout2d,
        layout="(N, C, H, W) or (C, H, W)",
        ranks=(3, 4),
    ),
]
