"""Results of the effects lab, one per experiment.

Tensors are ``TensorPayload`` objects in the request's ``encoding`` (integer tensors such as
pooling winners come as ``f32`` when ``f16`` was asked for, so that they stay exact). Fields
that do not apply (``None``) are left out of the JSON, as in run results.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from server.schemas.common import TensorPayload, TensorStats

# A number computed from the user's values: null in the JSON when it is not finite (values near
# the float32 range overflow to inf; inf - inf is NaN), as the statistics of TensorStats are.
Num = float | None


class PoolWindow(BaseModel):
    """One output position along one axis: padded span [start, end), input indices read."""

    start: int
    end: int
    indices: list[int]


class PoolAxis(BaseModel):
    axis: str = Field(description="L, or H and W")
    size: int = Field(description="the input's size along this axis")
    cells: list[PoolWindow] = Field(description="one per output position along the axis")


class PoolingResult(BaseModel):
    """Output cell (…, i, j) covers rows windows[0].cells[i].indices × columns
    windows[1].cells[j].indices of its input plane."""

    op: str
    dims: int
    args: dict[str, Any] = Field(description="per-dim lists, as used")
    torch_call: str
    input: TensorPayload
    output: TensorPayload
    windows: list[PoolAxis]
    winners: TensorPayload | None = Field(
        None, description="max/min: flat index (h·W + w, or l) of the winning input cell per output"
    )
    divisor: TensorPayload | None = Field(None, description="avg: what each output cell divides by")


class ChannelStats(BaseModel):
    mean: TensorPayload
    std: TensorPayload = Field(description="population std (correction=0)")


class BatchStats(BaseModel):
    """The statistics the layer normalizes with in training mode."""

    over: str
    count: int = Field(description="values behind each statistic")
    mean: TensorPayload
    var: TensorPayload = Field(description="biased (population) variance")


class RunningStats(BaseModel):
    momentum: float | None = Field(None, description="absent (null): cumulative average")
    steps: int
    num_batches_tracked: int
    mean: TensorPayload
    var: TensorPayload
    history_mean: TensorPayload = Field(description="(steps + 1, C): before and after each step")
    history_var: TensorPayload
    update: str


class NormalizationResult(BaseModel):
    layer: str
    torch_call: str
    mode: str
    input: TensorPayload = Field(description="source·scale + offset")
    output: TensorPayload = Field(description="train_output or eval_output, as mode says")
    train_output: TensorPayload | None = Field(None, description="absent: one value per stat")
    eval_output: TensorPayload = Field(description="after the steps, running statistics")
    channel_dim: int
    channels_before: ChannelStats
    channels_after: ChannelStats
    batch_stats: BatchStats
    running: RunningStats | None = Field(None, description="absent: the layer keeps none")
    weight: TensorPayload | None = None
    bias: TensorPayload | None = None
    eps: float
    before_stats: TensorStats
    after_stats: TensorStats


class DropoutPass(BaseModel):
    output: TensorPayload
    mask: TensorPayload = Field(description="1 kept, 0 zeroed")
    zero_fraction: Num


class DropoutResult(BaseModel):
    layer: str
    torch_call: str
    p: float
    mode: str
    seed: int
    scale: float = Field(description="1/(1−p) in train mode, 1 in eval mode")
    input: TensorPayload
    passes: list[DropoutPass]
    zero_fractions: list[Num]
    mean_zero_fraction: Num
    expected_zero_fraction: float
    max_scaling_error: Num = Field(description="max |survivor − x/(1−p)|: float rounding")
    survivors_scaled: bool
    dropped_are_zero: bool
    passes_differ: bool
    identity: bool = Field(description="every pass equals the input (eval mode)")


class ActivationCurve(BaseModel):
    type: str
    args: dict[str, Any]
    doc: str
    torch_call: str
    x: TensorPayload
    y: TensorPayload
    dy: TensorPayload = Field(description="f′(x) by autograd")


class ActivationsResult(BaseModel):
    curves: list[ActivationCurve]
    available: list[str] = Field(description="every element-wise activation of the catalog")


class SoftmaxResult(BaseModel):
    x: TensorPayload
    temperature: float
    scaled: TensorPayload
    softmax: TensorPayload
    log_softmax: TensorPayload
    sum: Num
    argmax: int
    max_probability: Num
    entropy: Num = Field(description="in nats")


class AffineFit(BaseModel):
    weight: TensorPayload
    bias: TensorPayload
    samples: int
    residual_rms: Num
    max_abs_error: Num
    relative_residual: Num = Field(description="‖residual‖ / ‖y − mean y‖; 0: exact fit")


class StackCase(BaseModel):
    output: TensorPayload
    max_abs_diff: Num = Field(description="vs composed_output")
    fit: AffineFit


class LinearWeights(BaseModel):
    weight: TensorPayload
    bias: TensorPayload | None = None


class LinearStackResult(BaseModel):
    sizes: list[int]
    seed: int
    activation: str
    activation_args: dict[str, Any]
    layers: list[LinearWeights]
    composed: LinearWeights = Field(description="W = W_N⋯W_1 and its bias")
    x: TensorPayload
    composed_output: TensorPayload = Field(description="x·Wᵀ + b")
    linear: StackCase = Field(description="the stack without activations")
    nonlinear: StackCase = Field(description="the activation between the layers")


class LossCurve(BaseModel):
    index: list[int]
    current: Num
    x: TensorPayload
    loss: TensorPayload


class LossResult(BaseModel):
    loss: str
    torch_call: str
    formula: str
    reduction: str
    target_kind: Literal["values", "indices", "probabilities"]
    input: TensorPayload
    target: TensorPayload
    value: Num = Field(description="for reduction; 'none': the sum of per_element")
    per_element: TensorPayload
    mean: Num
    sum: Num
    batchmean: float | None = None
    grad: TensorPayload = Field(description="d value / d input")
    probabilities: TensorPayload | None = Field(
        None, description="softmax/sigmoid/exp of the input, where the loss reads it so"
    )
    curve: LossCurve


class LinearStep(BaseModel):
    row: int
    out: int
    x: list[Num]
    w: list[Num]
    products: list[Num]
    sum: Num
    bias: Num
    value: Num = Field(description="sum + bias")
    torch: Num
    abs_diff: Num


class LinearResult(BaseModel):
    source: Literal["seeded", "model"]
    model_id: str | None = None
    layer: str | None = None
    torch_call: str
    in_features: int
    out_features: int
    formula: str
    weight: TensorPayload
    bias: TensorPayload | None = None
    x: TensorPayload
    y: TensorPayload = Field(description="torch's F.linear(x, W, b)")
    y_by_hand: TensorPayload
    max_abs_diff: Num
    steps: list[LinearStep]
    truncated: bool = Field(description="steps stop at 4,096 products")
    rows: int
