"""Activation functions: the non-linearities that make a stack of layers more than one matrix."""

from __future__ import annotations

from torch import nn

from models.catalog.helpers import dim_in_range, size
from models.catalog.registry import Arg, CheckFn, Example, LayerType

EXAMPLE = Example({}, ((2, 8),))


def _act(
    cls: type[nn.Module],
    doc: str,
    *args: Arg,
    example: Example = EXAMPLE,
    checks: tuple[CheckFn, ...] = (),
) -> LayerType:
    return LayerType(
        cls.__name__,
        "activation",
        "activations",
        doc,
        tuple(args),
        example,
        torch_class=cls,
        checks=checks,
    )


def _f(name: str, default: float, doc: str, **bounds) -> Arg:
    return Arg(name, "float", default, doc, **bounds)


DIM = Arg(
    "dim",
    "int",
    None,
    "the dimension that sums to 1 (null: torch's implicit choice)",
    optional=True,
)

ENTRIES = [
    _act(nn.ReLU, "max(0, x): passes positives, zeroes negatives."),
    _act(
        nn.LeakyReLU,
        "x for positives, negative_slope·x for negatives.",
        _f("negative_slope", 0.01, "slope for negative inputs"),
    ),
    _act(
        nn.PReLU,
        "Leaky ReLU whose negative slope is learned.",
        size("num_parameters", "1, or one slope per channel", default=1),
        _f("init", 0.25, "initial slope"),
    ),
    _act(
        nn.ELU,
        "x for positives, alpha·(eˣ−1) for negatives.",
        _f("alpha", 1.0, "saturation value for negatives"),
    ),
    _act(nn.SELU, "Scaled ELU with fixed constants (self-normalizing)."),
    _act(
        nn.GELU,
        "x·Φ(x): the transformer's smooth ReLU.",
        Arg(
            "approximate",
            "choice",
            "none",
            "exact, or the tanh approximation",
            choices=("none", "tanh"),
        ),
    ),
    _act(nn.SiLU, "x·sigmoid(x) (also called swish)."),
    _act(nn.Mish, "x·tanh(softplus(x))."),
    _act(nn.Tanh, "Hyperbolic tangent: squashes into (−1, 1)."),
    _act(
        nn.Hardtanh,
        "Clips x into [min_val, max_val].",
        _f("min_val", -1.0, "lower bound"),
        _f("max_val", 1.0, "upper bound"),
    ),
    _act(nn.Sigmoid, "1/(1+e⁻ˣ): squashes into (0, 1)."),
    _act(
        nn.Softplus,
        "log(1+e^(βx))/β: a smooth ReLU.",
        _f("beta", 1.0, "sharpness", gt=0),
        _f("threshold", 20.0, "linear above this"),
    ),
    _act(
        nn.Softmax,
        "Turns scores into probabilities that sum to 1 along dim.",
        DIM,
        example=Example({"dim": 1}, ((2, 8),)),
        checks=(dim_in_range("dim"),),  # softmax's meta kernel does not check dim
    ),
    _act(
        nn.LogSoftmax,
        "log(softmax(x)) along dim, computed stably (pairs with NLLLoss).",
        DIM,
        example=Example({"dim": 1}, ((2, 8),)),
        checks=(dim_in_range("dim"),),
    ),
]
