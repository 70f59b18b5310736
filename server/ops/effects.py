"""Handler of the effects lab's message: one experiment per request type (``models.effects``).

The message carries the route's validated request; the experiment is picked by its type, runs
on the named model's live copy when a source reads one, and its tensors are encoded here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from models.build import Built
from models.effects import activations as act
from models.effects import dropout as drop
from models.effects import linear as lin
from models.effects import losses, normalization, pooling, to_payloads
from models.effects.source import RandomSource, resolve
from server.ops import messages as m
from server.schemas.effects import (
    ActivationsRequest,
    DropoutRequest,
    LinearRequest,
    LinearStackRequest,
    LossRequest,
    NormalizationRequest,
    PoolingRequest,
    SoftmaxRequest,
)
from server.workers.context import WorkerContext


def _tensor(ctx: WorkerContext, source: Any, built: Built | None):
    return resolve(source, built=built, limits=ctx.limits, max_pixels=ctx.settings.max_image_pixels)


def _pooling(ctx: WorkerContext, body: PoolingRequest, built: Built | None) -> dict:
    x = _tensor(ctx, body.source, built)
    return pooling.pool(
        x,
        body.op,
        dims=body.dims,
        kernel_size=body.kernel_size,
        stride=body.stride,
        padding=body.padding,
        dilation=body.dilation,
        ceil_mode=body.ceil_mode,
        count_include_pad=body.count_include_pad,
        output_size=body.output_size,
        max_elements=ctx.limits.max_input_elements,
        max_work=ctx.limits.max_work,
    )


def _normalization(ctx: WorkerContext, body: NormalizationRequest, built: Built | None) -> dict:
    x = _tensor(ctx, body.source, built)
    fields = body.model_dump(exclude={"source", "preset", "encoding"})
    return normalization.normalize(x, **fields, max_elements=ctx.limits.max_input_elements)


def _dropout(ctx: WorkerContext, body: DropoutRequest, built: Built | None) -> dict:
    x = _tensor(ctx, body.source, built)
    return drop.dropout(
        x,
        body.p,
        layer=body.layer,
        passes=body.passes,
        mode=body.mode,
        seed=body.seed,
        max_elements=ctx.limits.max_input_elements,
    )


def _activations(ctx: WorkerContext, body: ActivationsRequest, _: Built | None) -> dict:
    curves = [
        act.curve(f.type, f.args, x_min=body.x_min, x_max=body.x_max, points=body.points)
        for f in body.functions
    ]
    return {"curves": curves, "available": act.activation_types()}


def _softmax(ctx: WorkerContext, body: SoftmaxRequest, _: Built | None) -> dict:
    return act.softmax(body.scores, body.temperature)


def _linear_stack(ctx: WorkerContext, body: LinearStackRequest, _: Built | None) -> dict:
    return act.linear_stack(
        body.sizes,
        bias=body.bias,
        seed=body.seed,
        batch=body.batch,
        samples=body.samples,
        activation=body.activation,
        activation_args=body.activation_args,
    )


def _losses(ctx: WorkerContext, body: LossRequest, built: Built | None) -> dict:
    x = _tensor(ctx, body.input, built)  # both filled by LossRequest from its example
    target = _tensor(ctx, body.target, None)
    return losses.loss(
        body.loss,
        x,
        target,
        reduction=body.reduction,
        beta=body.beta,
        delta=body.delta,
        label_smoothing=body.label_smoothing,
        weight=body.weight,
        pos_weight=body.pos_weight,
        log_target=body.log_target,
        curve_index=body.curve_index,
        curve_min=body.curve_min,
        curve_max=body.curve_max,
        curve_points=body.curve_points,
        max_elements=ctx.limits.max_input_elements,
    )


def _linear(ctx: WorkerContext, body: LinearRequest, built: Built | None) -> dict:
    if body.layer is not None and built is not None:
        layer = lin.linear_of(built.model, body.layer)
        where = {"source": "model", "model_id": body.model_id, "layer": body.layer}
    else:
        layer = lin.seeded_linear(
            body.in_features, body.out_features, bias=body.bias, seed=body.seed
        )
        where = {"source": "seeded", "model_id": None, "layer": None}
    if body.x is None:
        x = _tensor(
            ctx, RandomSource(distribution="uniform", shape=[1, layer.in_features], seed=0), None
        )
    else:
        x = _tensor(ctx, body.x, built)
    call = f"nn.Linear({layer.in_features}, {layer.out_features}"
    call += ")" if layer.bias is not None else ", bias=False)"
    result = lin.by_hand(layer.weight, layer.bias, x, outputs=body.outputs)
    return {**where, "torch_call": call, **result}


EXPERIMENTS: dict[type, Callable[[WorkerContext, Any, Built | None], dict]] = {
    PoolingRequest: _pooling,
    NormalizationRequest: _normalization,
    DropoutRequest: _dropout,
    ActivationsRequest: _activations,
    SoftmaxRequest: _softmax,
    LinearStackRequest: _linear_stack,
    LossRequest: _losses,
    LinearRequest: _linear,
}


def effect(ctx: WorkerContext, msg: m.Effect) -> dict[str, Any]:
    built = None
    if msg.model_id is not None:
        built = ctx.live(msg.workspace_id, msg.model_id, msg.version).built
    body = msg.request
    return to_payloads(EXPERIMENTS[type(body)](ctx, body, built), body.encoding)


HANDLERS = {m.Effect: effect}
