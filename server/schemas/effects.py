"""Requests of the effects lab: one per experiment, each with the tutorial's case as a preset.

Every request takes ``preset`` (``"tutorial"``: the fields it does not give are filled from
the tutorial's case, a shallow merge) and ``encoding`` (how tensors come back; ``list`` by
default, exact and readable). Inputs come from a source (:mod:`models.effects.source`):
``random`` (seeded, with a shape), ``constant``, ``tensor`` (given values) or ``model`` (the
activation of a layer of one of the workspace's models). The results are in
:mod:`server.schemas.effects_results`.
"""

from __future__ import annotations

import types
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.effects.losses import Loss, Reduction
from models.effects.pooling import Op
from models.effects.source import ConstantSource, RandomSource, Source, TensorSource
from models.tensors import Encoding
from server.schemas.common import Seed

Finite = Annotated[float, Field(allow_inf_nan=False)]
Size = Annotated[int, Field(ge=1, le=4096)]
PoolInts = Size | Annotated[list[Size], Field(min_length=1, max_length=2)]
PadInts = (
    Annotated[int, Field(ge=0, le=2048)]
    | Annotated[list[Annotated[int, Field(ge=0, le=2048)]], Field(min_length=1, max_length=2)]
)
Values = Annotated[list[Finite], Field(min_length=1, max_length=4096)]
TargetSource = Annotated[RandomSource | ConstantSource | TensorSource, Field(discriminator="kind")]


def _uniform(shape: list[int], seed: int = 0) -> dict[str, Any]:
    return {"kind": "random", "distribution": "uniform", "shape": shape, "seed": seed}


def _tensor(data: Any) -> dict[str, Any]:
    return {"kind": "tensor", "data": data}


class EffectRequest(BaseModel):
    """What every experiment takes besides its own fields."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    preset: Literal["tutorial"] | None = Field(
        None, description="fill the fields not given from the tutorial's case"
    )
    encoding: Encoding = Field("list", description="tensors as nested lists, or base64 f16/f32")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            preset = data.get("preset")  # any JSON: a list is unhashable, so test str first
            if isinstance(preset, str) and preset in cls.PRESETS:
                data = {**cls.PRESETS[data["preset"]], **data}
            data = cls._fill(data)
        return data

    @classmethod
    def _fill(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Defaults that depend on other fields (after the preset is applied)."""
        return data


def _examples(cls_presets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"examples": [cls_presets["tutorial"]]}


# -- pooling ------------------------------------------------------------------------------
POOLING_TUTORIAL = {"source": _uniform([1, 6, 6]), "op": "max", "dims": 2, "kernel_size": 3}


class PoolingRequest(EffectRequest):
    """Max / avg / min / adaptive pooling (the tutorial: a 1×6×6 input through MaxPool2d(3))."""

    PRESETS: ClassVar = {"tutorial": POOLING_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    source: Source = Field(
        default_factory=lambda: RandomSource(**POOLING_TUTORIAL["source"]),
        description="the input; default: uniform random 1×6×6, seed 0 (torch.rand)",
    )
    op: Op = "max"
    dims: Literal[1, 2] = Field(
        2, description="1: (N, C, L) or (C, L); 2: (N, C, H, W) or (C, H, W)"
    )
    kernel_size: PoolInts | None = Field(3, description="one number or one per spatial dim")
    stride: PoolInts | None = Field(None, description="null: the kernel size")
    padding: PadInts = 0
    dilation: PoolInts = 1
    ceil_mode: bool = False
    count_include_pad: bool = Field(True, description="avg: padding counts in the divisor")
    output_size: PoolInts | None = Field(None, description="adaptive pooling's output size")


# -- normalization ------------------------------------------------------------------------
NORM_TUTORIAL = {
    "source": _uniform([1, 4, 4]),
    "scale": 20.0,
    "offset": 5.0,
    "layer": "BatchNorm1d",
    "mode": "train",
    "steps": 1,
}


class NormalizationRequest(EffectRequest):
    """A norm layer on ``source·scale + offset`` (the tutorial: rand(1, 4, 4)·20 + 5 through
    BatchNorm1d(4)); ``steps`` training-mode calls, then the train and eval outputs."""

    PRESETS: ClassVar = {"tutorial": NORM_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    source: Source = Field(
        default_factory=lambda: RandomSource(**NORM_TUTORIAL["source"]),
        description="the input; default: uniform random 1×4×4, seed 0 (torch.rand)",
    )
    scale: Finite = 20.0
    offset: Finite = 5.0
    layer: Literal[
        "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d"
    ] = "BatchNorm1d"
    mode: Literal["train", "eval"] = Field("train", description="which output is 'output'")
    steps: int = Field(1, ge=0, le=1000, description="training-mode calls before eval")
    eps: float = Field(1e-5, gt=0, le=1)
    momentum: float | None = Field(0.1, ge=0, le=1, description="null: cumulative average")
    affine: bool | None = Field(None, description="null: torch's default for the layer")
    track_running_stats: bool | None = Field(None, description="null: torch's default")
    num_groups: int | None = Field(None, ge=1, le=4096, description="GroupNorm; null: 2 or 1")
    normalized_dims: int = Field(1, ge=1, le=6, description="LayerNorm: how many last dims")
    weight: Values | None = Field(None, description="affine weight, one per channel")
    bias: Values | None = Field(None, description="affine bias, one per channel")
    bins: int = Field(20, ge=1, le=200, description="histogram bins")


# -- dropout ------------------------------------------------------------------------------
DROPOUT_TUTORIAL = {"source": _uniform([1, 4, 4]), "p": 0.4, "passes": 2, "mode": "train"}


class DropoutRequest(EffectRequest):
    """N passes of one input through Dropout(p) (the tutorial: p = 0.4 on rand(1, 4, 4))."""

    PRESETS: ClassVar = {"tutorial": DROPOUT_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    source: Source = Field(
        default_factory=lambda: RandomSource(**DROPOUT_TUTORIAL["source"]),
        description="the input; default: uniform random 1×4×4, seed 0 (torch.rand)",
    )
    layer: Literal["Dropout", "Dropout1d", "Dropout2d"] = "Dropout"
    p: float = Field(0.5, ge=0, lt=1, description="probability of zeroing, in [0, 1)")
    passes: int = Field(2, ge=1, le=1000)
    mode: Literal["train", "eval"] = "train"
    seed: Seed = Field(0, description="torch.manual_seed before the passes")


# -- activations --------------------------------------------------------------------------
class ActivationFn(BaseModel):
    """An element-wise activation of the catalog and its args (catalog names and ranges)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=64, examples=["LeakyReLU"])
    args: dict[str, Any] = Field(default_factory=dict, examples=[{"negative_slope": 0.1}])


ACT_TUTORIAL = {
    "functions": [{"type": t} for t in ("ReLU", "LeakyReLU", "Tanh", "Hardtanh", "Sigmoid")],
    "x_min": -5.0,
    "x_max": 5.0,
    "points": 201,
}


class ActivationsRequest(EffectRequest):
    """f(x) and f′(x) of up to 16 activations over [x_min, x_max]."""

    PRESETS: ClassVar = {"tutorial": ACT_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    functions: Annotated[list[ActivationFn], Field(min_length=1, max_length=16)] = Field(
        default_factory=lambda: [ActivationFn(type="ReLU")]
    )
    x_min: Finite = Field(-5.0, ge=-1e6, le=1e6)
    x_max: Finite = Field(5.0, ge=-1e6, le=1e6)
    points: int = Field(201, ge=2, le=2001)


SOFTMAX_TUTORIAL = {"scores": [1.0, 2.0, 3.0], "temperature": 1.0}


class SoftmaxRequest(EffectRequest):
    """softmax(x/T) and log_softmax(x/T) of a vector of scores."""

    PRESETS: ClassVar = {"tutorial": SOFTMAX_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    scores: Values = Field(default_factory=lambda: [1.0, 2.0, 3.0])
    temperature: float = Field(1.0, gt=0, le=1e6, allow_inf_nan=False)


STACK_TUTORIAL = {"sizes": [3, 4, 4, 2], "bias": True, "seed": 0, "activation": "ReLU"}


class LinearStackRequest(EffectRequest):
    """Linear layers of ``sizes`` composed into one matrix, with and without an activation
    between them."""

    PRESETS: ClassVar = {"tutorial": STACK_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    sizes: Annotated[
        list[Annotated[int, Field(ge=1, le=128)]], Field(min_length=3, max_length=9)
    ] = Field(default_factory=lambda: [3, 4, 4, 2], description="3→4→4→2 is three layers")
    bias: bool = True
    seed: Seed = 0
    batch: int = Field(8, ge=1, le=1024, description="random rows compared")
    samples: int = Field(512, ge=2, le=4096, description="random rows for the affine fit")
    activation: str = Field("ReLU", max_length=64)
    activation_args: dict[str, Any] = Field(default_factory=dict)


# -- losses -------------------------------------------------------------------------------
_REGRESSION = {"input": _tensor([[0.5, 1.5, 2.0]]), "target": _tensor([[1.0, 1.0, 1.0]])}
_LOGITS = [[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]
LOSS_EXAMPLES: dict[str, dict[str, Any]] = {
    "MSELoss": _REGRESSION,
    "L1Loss": _REGRESSION,
    "SmoothL1Loss": _REGRESSION,
    "HuberLoss": _REGRESSION,
    "CrossEntropyLoss": {"input": _tensor(_LOGITS), "target": _tensor([0, 1])},
    "NLLLoss": {
        "input": _tensor([[-0.417, -1.417, -2.317], [-2.2177, -0.2177, -2.4177]]),
        "target": _tensor([0, 1]),
    },
    "BCELoss": {"input": _tensor([0.9, 0.2, 0.6]), "target": _tensor([1.0, 0.0, 1.0])},
    "BCEWithLogitsLoss": {"input": _tensor([2.0, -1.0, 0.5]), "target": _tensor([1.0, 0.0, 1.0])},
    "KLDivLoss": {
        "input": _tensor([[-1.204, -0.6931, -1.6094]]),
        "target": _tensor([[0.25, 0.5, 0.25]]),
    },
}
LOSS_TUTORIAL = {"loss": "CrossEntropyLoss", **LOSS_EXAMPLES["CrossEntropyLoss"]}


class LossRequest(EffectRequest):
    """A loss of predictions against targets; ``input``/``target`` left out: an example for
    the chosen loss (the tutorial's case: cross-entropy of two rows of logits)."""

    PRESETS: ClassVar = {"tutorial": LOSS_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    loss: Loss = "MSELoss"
    input: Source | None = Field(
        None,
        description="predictions (logits, probabilities or log-probabilities); "
        "left out: the chosen loss's example",
    )
    target: TargetSource | None = Field(
        None, description="values, class indices or probabilities; left out: the example"
    )
    reduction: Reduction = "mean"
    beta: float = Field(1.0, gt=0, le=1e6, description="SmoothL1Loss")
    delta: float = Field(1.0, gt=0, le=1e6, description="HuberLoss")
    label_smoothing: float = Field(0.0, ge=0, le=1, description="CrossEntropyLoss")
    weight: Values | None = Field(None, description="class weights (CrossEntropy, NLL)")
    pos_weight: Values | None = Field(None, description="BCEWithLogitsLoss")
    log_target: bool = Field(False, description="KLDivLoss")
    curve_index: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=6)] | None = None
    curve_min: Finite | None = None
    curve_max: Finite | None = None
    curve_points: int = Field(101, ge=2, le=2001)

    @classmethod
    def _fill(cls, data: dict[str, Any]) -> dict[str, Any]:
        loss = data.get("loss", "MSELoss")  # any JSON: a list or dict is unhashable
        example = LOSS_EXAMPLES.get(loss, {}) if isinstance(loss, str) else {}
        return {**data, **{k: v for k, v in example.items() if data.get(k) is None}}


# -- linear -------------------------------------------------------------------------------
LINEAR_TUTORIAL = {"in_features": 3, "out_features": 2, "seed": 0, "x": _uniform([1, 3])}


class LinearRequest(EffectRequest):
    """A seeded Linear(in, out), or a Linear layer of a workspace model (``model_id`` and
    ``layer``), applied to ``x`` and worked out by hand (the tutorial: Linear(3, 2) on
    rand(1, 3)). ``x`` left out: uniform random (1, in_features), seed 0."""

    PRESETS: ClassVar = {"tutorial": LINEAR_TUTORIAL}
    model_config = ConfigDict(json_schema_extra=_examples(PRESETS))

    in_features: int = Field(3, ge=1, le=1024)
    out_features: int = Field(2, ge=1, le=1024)
    bias: bool = True
    seed: Seed = Field(0, description="torch.manual_seed before nn.Linear")
    model_id: str | None = Field(None, max_length=64, description="use this model's layer")
    layer: str | None = Field(None, max_length=128, description="a Linear layer of model_id")
    x: Source | None = None
    outputs: Annotated[list[Annotated[int, Field(ge=0)]], Field(max_length=1024)] | None = Field(
        None, description="output units to work out term by term (default: all)"
    )

    @model_validator(mode="after")
    def _model_layer(self) -> LinearRequest:
        if (self.model_id is None) != (self.layer is None):
            raise ValueError("give both model_id and layer (a model's Linear), or neither")
        return self


# -- what the lab's controls offer: read by the page from GET /api/effects ----------------------
EXPERIMENTS: dict[str, type[EffectRequest]] = {
    "pooling": PoolingRequest,
    "normalization": NormalizationRequest,
    "dropout": DropoutRequest,
    "activations": ActivationsRequest,
    "losses": LossRequest,
    "linear": LinearRequest,
}


def _choices(annotation: Any) -> list[Any] | None:
    """The values of a Literal field (``Literal[...] | None`` too), else None."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if (found := _choices(arg)) is not None:
                return found
    return None


class EffectOptions(BaseModel):
    """One experiment's choices (its Literal fields), defaults and the tutorial's case."""

    options: dict[str, list[Any]]
    defaults: dict[str, Any]
    tutorial: dict[str, Any]


def effect_options() -> dict[str, EffectOptions]:
    """Every experiment's choices, defaults and tutorial case, from the request schemas."""
    out = {}
    for name, cls in EXPERIMENTS.items():
        options, defaults = {}, {}
        for field, info in cls.model_fields.items():
            if field in ("preset", "encoding"):
                continue
            if (found := _choices(info.annotation)) is not None:
                options[field] = found
            if not info.is_required() and info.default_factory is None:
                defaults[field] = info.default
        out[name] = EffectOptions(
            options=options, defaults=defaults, tutorial=cls.PRESETS["tutorial"]
        )
    return out
