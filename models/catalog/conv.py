"""Convolution and pooling layers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from models import layers
from models.catalog.helpers import channel_dim, divides, expects_size, flag, size
from models.catalog.registry import Arg, Example, LayerType, Source
from models.errors import SpecError

LAYOUTS = {1: "(N, C, L) or (C, L)", 2: "(N, C, H, W) or (C, H, W)", 3: "(N, C, D, H, W)"}


def _ints(name: str, default, doc: str, n: int, *, ge: int = 1, also=(), optional=False) -> Arg:
    return Arg(name, "ints", default, doc, ge=ge, le=2**31 - 1, n=n, also=also, optional=optional)


def _conv(n: int, transpose: bool) -> LayerType:
    cls = getattr(nn, f"ConvTranspose{n}d" if transpose else f"Conv{n}d")
    args = [
        size("in_channels", "channels of the input", auto=channel_dim(n)),
        size("out_channels", "channels produced: the number of features (filters) learned"),
        _ints("kernel_size", ..., "the size of the sliding window", n),
        _ints("stride", 1, "step of the window", n),
    ]
    if transpose:
        args += [
            _ints("padding", 0, "implicit zero padding removed from the output", n, ge=0),
            _ints("output_padding", 0, "extra size added to one side of the output", n, ge=0),
            size("groups", "blocked connections from input to output channels", default=1),
            flag("bias", True, "learn an additive bias"),
            _ints("dilation", 1, "spacing between kernel elements", n),
        ]
    else:
        args += [
            _ints("padding", 0, "padding added to all sides", n, ge=0, also=("same", "valid")),
            _ints("dilation", 1, "spacing between kernel elements", n),
            size("groups", "blocked connections from input to output channels", default=1),
            flag("bias", True, "learn an additive bias"),
            Arg(
                "padding_mode",
                "choice",
                "zeros",
                "how the border is padded",
                choices=("zeros", "reflect", "replicate", "circular"),
            ),
        ]
    spatial = {1: (16,), 2: (8, 8), 3: (4, 6, 6)}[n]
    what = "Transposed convolution (learned up-sampling)" if transpose else "Convolution"
    doc = f"{what} over {n}-D data: out_channels filters of kernel_size slide over the input."
    if n == 2 and not transpose:
        doc = "2-D convolution: each of out_channels filters scans the image and makes one map."
    return LayerType(
        cls.__name__,
        "convolution",
        "convolution" if n == 2 else "beyond",
        doc,
        tuple(args),
        Example({"in_channels": 3, "out_channels": 4, "kernel_size": 3}, ((1, 3, *spatial),)),
        torch_class=cls,
        layout=LAYOUTS[n],
        ranks=(n + 1, n + 2),
        checks=(
            expects_size("in_channels", lambda s, n=n: -(n + 1), "input channels"),
            divides("in_channels", "groups", "groups"),
            divides("out_channels", "groups", "groups"),
            *((_output_padding,) if transpose else (_same_padding,)),
        ),
    )


def _output_padding(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    """Torch checks this only when the layer runs (the meta kernel lets it through)."""

    def per_dim(value: Any) -> list[int]:
        return list(value) if isinstance(value, list | tuple) else [value]

    pads, strides, dilations = (per_dim(args[k]) for k in ("output_padding", "stride", "dilation"))
    n = max(len(pads), len(strides), len(dilations))
    pads, strides, dilations = (v * n if len(v) == 1 else v for v in (pads, strides, dilations))
    for pad, stride, dilation in zip(pads, strides, dilations, strict=True):
        if pad >= stride and pad >= dilation:
            most = max(stride, dilation) - 1
            raise SpecError(
                "invalid_arg",
                f"{layer} has output_padding={args['output_padding']}, but output padding must "
                f"be smaller than the stride ({args['stride']}) or the dilation "
                f"({args['dilation']}). Set output_padding to at most {most}, or raise stride.",
                layer=layer,
                detail={"arg": "output_padding"},
            )


def _same_padding(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    stride = args["stride"]
    if args["padding"] == "same" and any(
        s != 1 for s in (stride if isinstance(stride, list) else [stride])
    ):
        raise SpecError(
            "invalid_arg",
            f"{layer} has padding='same' with stride={stride}, but torch supports 'same' "
            f"only with stride 1. Set stride to 1, or give padding as a number (kernel_size // 2 "
            f"keeps the size for an odd kernel at stride 1).",
            layer=layer,
            detail={"arg": "padding"},
        )


def _pool_args(n: int, *, dilation: bool, count_include_pad: bool, divisor: bool) -> tuple:
    args = [
        _ints("kernel_size", ..., "the size of the pooling window", n),
        _ints("stride", None, "step of the window (default: kernel_size)", n, optional=True),
        _ints("padding", 0, "implicit padding on both sides (at most half the kernel)", n, ge=0),
    ]
    if dilation:
        args.append(_ints("dilation", 1, "spacing between window elements", n))
    args.append(flag("ceil_mode", False, "round the output size up instead of down"))
    if count_include_pad:
        args.append(flag("count_include_pad", True, "count padding zeros in the average"))
    if divisor:
        args.append(
            Arg("divisor_override", "int", None, "divide by this instead", ge=1, optional=True)
        )
    return tuple(args)


def _pool(kind: str, n: int) -> LayerType:
    name = f"{kind}Pool{n}d"
    is_min = kind == "Min"
    cls = layers.MinPool2d if is_min else getattr(nn, name)
    what = {
        "Max": "the maximum",
        "Avg": "the average",
        "Min": "the minimum (computed as -maxpool(-x); not a torch class)",
    }[kind]
    spatial = {1: (12,), 2: (6, 6), 3: (4, 4, 4)}[n]
    return LayerType(
        name,
        "pooling",
        "pooling",
        f"Replaces each window of the input by {what}: shrinks the map, keeps the strongest.",
        _pool_args(
            n, dilation=kind != "Avg", count_include_pad=kind == "Avg", divisor=name == "AvgPool2d"
        ),
        Example({"kernel_size": 3}, ((1, 1, *spatial),)),
        torch_class=cls,
        torch_name="models.layers.MinPool2d (-max_pool2d(-x))" if is_min else "",
        is_torch=not is_min,
        layout=LAYOUTS[n],
        ranks=(n + 1, n + 2),
        note="Not a torch class: the tutorial's min pooling, -MaxPool2d(-x)." if is_min else "",
    )


def _adaptive(n: int) -> LayerType:
    cls = getattr(nn, f"AdaptiveAvgPool{n}d")
    return LayerType(
        cls.__name__,
        "pooling",
        "pooling",
        "Average pooling to a fixed output size, whatever the input size.",
        (_ints("output_size", ..., "the output size", n),),
        Example({"output_size": 2}, ((1, 3, *((7,) * n)),)),
        torch_class=cls,
        layout=LAYOUTS[n],
        ranks=(n + 1, n + 2),
    )


ENTRIES = [
    _conv(1, False),
    _conv(2, False),
    _conv(3, False),
    _conv(1, True),
    _conv(2, True),
    _pool("Max", 1),
    _pool("Max", 2),
    _pool("Max", 3),
    _pool("Avg", 1),
    _pool("Avg", 2),
    _pool("Min", 2),
    _adaptive(1),
    _adaptive(2),
]
