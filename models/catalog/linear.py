"""Linear layers and the reshaping helpers a spec needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from models import layers
from models.catalog.helpers import expects_size, flag, last_dim, size
from models.catalog.registry import Arg, Example, LayerType, Source
from models.errors import SpecError, fmt_shape

IN_FEATURES = "the size of each input sample (its last dimension)"


def _broadcasts(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    try:
        torch.broadcast_shapes(*(s.shape for s in srcs))
    except RuntimeError:
        given = " and ".join(s.gives(fmt_shape(s.shape)) for s in srcs)
        raise SpecError(
            "shape_mismatch",
            f"{layer} adds its inputs element by element, but {given}, which do not broadcast: "
            f"counted from the last dimension, each size must be equal or 1. Change the layers "
            f"before it so that the shapes match.",
            layer=layer,
            detail={"input_shapes": [list(s.shape) for s in srcs]},
        ) from None


def _permutes(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    dims, rank = args["dims"], len(srcs[0].shape)
    if sorted(d % rank if -rank <= d < rank else d for d in dims) != list(range(rank)):
        raise SpecError(
            "shape_mismatch",
            f"{layer} reorders dims {dims}, but {srcs[0].gives(fmt_shape(srcs[0].shape))} "
            f"({rank}-D): dims must list each of 0..{rank - 1} once, e.g. "
            f"{list(range(rank))[::-1]}.",
            layer=layer,
            detail={"arg": "dims", "input_shape": [*srcs[0].shape]},
        )


def _unflattens(layer: str, args: Mapping[str, Any], srcs: Sequence[Source]) -> None:
    sizes = args["unflattened_size"]
    if sizes.count(-1) > 1:
        raise SpecError(
            "invalid_arg",
            f"{layer} has unflattened_size {sizes} with more than one -1; only one size can be "
            f"inferred. Give the others as numbers.",
            layer=layer,
            detail={"arg": "unflattened_size"},
        )


ENTRIES = [
    LayerType(
        "Linear",
        "linear",
        "linear",
        "Fully connected: y = x·Wᵀ + b; every input feature influences every output.",
        (
            size("in_features", IN_FEATURES, auto=last_dim()),
            size("out_features", "the size of each output sample"),
            flag("bias", True, "learn an additive bias b"),
        ),
        Example({"in_features": 3, "out_features": 2}, ((1, 3),)),
        torch_class=nn.Linear,
        layout="(*, in_features)",
        checks=(expects_size("in_features", -1, "input features"),),
    ),
    LayerType(
        "Bilinear",
        "linear",
        "beyond",
        "y = x₁ᵀ·A·x₂ + b over two inputs: each output mixes every pair of features.",
        (
            size("in1_features", "the last dimension of the first input", auto=last_dim(0)),
            size("in2_features", "the last dimension of the second input", auto=last_dim(1)),
            size("out_features", "the size of each output sample"),
            flag("bias", True, "learn an additive bias"),
        ),
        Example({"in1_features": 3, "in2_features": 4, "out_features": 5}, ((2, 3), (2, 4))),
        torch_class=nn.Bilinear,
        n_inputs=(2, 2),
        input_names=("input1", "input2"),
        layout="(*, in1_features) and (*, in2_features)",
        checks=(
            expects_size("in1_features", -1, "features on its first input"),
            expects_size("in2_features", -1, "features on its second input", src=1),
        ),
    ),
    LayerType(
        "Identity",
        "linear",
        "beyond",
        "Passes its input through unchanged (a placeholder).",
        (),
        Example({}, ((2, 3),)),
        torch_class=nn.Identity,
    ),
    LayerType(
        "Flatten",
        "reshape",
        "convolution",
        "Flattens dimensions start_dim..end_dim into one (LeNet-5's 16×6×6 → 576).",
        (
            Arg("start_dim", "int", 1, "first dimension to flatten"),
            Arg("end_dim", "int", -1, "last dimension to flatten"),
        ),
        Example({}, ((1, 16, 6, 6),)),
        torch_class=nn.Flatten,
    ),
    LayerType(
        "Unflatten",
        "reshape",
        "beyond",
        "Splits dimension dim into unflattened_size (the inverse of Flatten).",
        (
            Arg("dim", "int", ..., "the dimension to split"),
            Arg("unflattened_size", "int_list", ..., "the sizes it becomes", ge=-1),
        ),
        Example({"dim": 1, "unflattened_size": [16, 6, 6]}, ((1, 576),)),
        torch_class=nn.Unflatten,
        checks=(_unflattens,),
    ),
    LayerType(
        "Reshape",
        "reshape",
        "beyond",
        "x.reshape(shape); one entry may be -1 and is then inferred.",
        (Arg("shape", "int_list", ..., "the new shape (one entry may be -1)", ge=-1),),
        Example({"shape": [-1, 1, 6]}, ((5, 6),)),
        torch_class=layers.Reshape,
        torch_name="Tensor.reshape",
        is_torch=False,
    ),
    LayerType(
        "Permute",
        "reshape",
        "beyond",
        "x.permute(dims): reorder dimensions, e.g. (N, L, E) → (L, N, E).",
        (Arg("dims", "int_list", ..., "the new order of the dimensions"),),
        Example({"dims": [1, 0, 2]}, ((2, 5, 4),)),
        torch_class=layers.Permute,
        checks=(_permutes,),
        torch_name="Tensor.permute",
        is_torch=False,
    ),
    LayerType(
        "Unsqueeze",
        "reshape",
        "recurrent",
        "Inserts a dimension of size 1 at dim, e.g. (L, E) → (L, 1, E) for an RNN.",
        (Arg("dim", "int", ..., "where the new dimension goes"),),
        Example({"dim": 1}, ((5, 6),)),
        torch_class=layers.Unsqueeze,
        torch_name="Tensor.unsqueeze",
        is_torch=False,
    ),
    LayerType(
        "Select",
        "reshape",
        "recurrent",
        "Picks one index of a dimension, e.g. the last time step (dim 0, index -1).",
        (
            Arg("dim", "int", ..., "the dimension to index"),
            Arg("index", "int", ..., "the index to keep (negative counts from the end)"),
        ),
        Example({"dim": 0, "index": -1}, ((5, 1, 6),)),
        torch_class=layers.Select,
        torch_name="Tensor.select",
        is_torch=False,
    ),
    LayerType(
        "Mean",
        "reshape",
        "transformer",
        "Mean over one dimension, e.g. average a sequence's tokens before a classifier.",
        (
            Arg("dim", "int", ..., "the dimension to average over"),
            flag("keepdim", False, "keep the dimension with size 1"),
        ),
        Example({"dim": 1}, ((2, 5, 4),)),
        torch_class=layers.Mean,
        torch_name="Tensor.mean",
        is_torch=False,
    ),
    LayerType(
        "Add",
        "merge",
        "beyond",
        "Element-wise sum of two or more inputs (with broadcasting): residual connections.",
        (),
        Example({}, ((2, 4), (2, 4))),
        torch_class=layers.Add,
        checks=(_broadcasts,),
        torch_name="torch.add",
        is_torch=False,
        n_inputs=(2, 8),
        input_names=("inputs",),
    ),
    LayerType(
        "Concat",
        "merge",
        "beyond",
        "torch.cat of two or more inputs along dim.",
        (Arg("dim", "int", 1, "the dimension to join along"),),
        Example({"dim": 1}, ((2, 3), (2, 4))),
        torch_class=layers.Concat,
        torch_name="torch.cat",
        is_torch=False,
        n_inputs=(2, 8),
        input_names=("inputs",),
    ),
]
