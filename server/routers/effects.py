"""The effects lab: pooling, normalization, dropout, activations, losses, Linear by hand.

Every route is a POST under ``/api/effects`` and needs the workspace token
(``Authorization: Bearer <token>``), like every route that spends the worker's time: the
token ties the work to a workspace (and, in a classroom, to the access code that made it),
and the ``model`` source reads that workspace's models. The computations live in
:mod:`models.effects` and run on the worker (CPU tensors, float32), never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from models.build import Built
from models.effects import activations as act
from models.effects import dropout as drop
from models.effects import linear as lin
from models.effects import losses, normalization, pooling, to_payloads
from models.effects.source import ModelSource, RandomSource, resolve
from models.errors import SpecError
from server.deps import StateDep, WorkspaceDep
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.effects import (
    ActivationsRequest,
    DropoutRequest,
    EffectOptions,
    LinearRequest,
    LinearStackRequest,
    LossRequest,
    NormalizationRequest,
    PoolingRequest,
    SoftmaxRequest,
    effect_options,
)
from server.schemas.effects_results import (
    ActivationsResult,
    DropoutResult,
    LinearResult,
    LinearStackResult,
    LossResult,
    NormalizationResult,
    PoolingResult,
    SoftmaxResult,
)
from server.state import AppState
from server.store import Workspace

router = APIRouter(prefix="/api/effects", tags=["effects"], route_class=JsonRoute)
Job = Callable[[Built | None], dict[str, Any]]


@router.get("", response_model=dict[str, EffectOptions], operation_id="listEffects")
def effect_choices() -> dict[str, EffectOptions]:
    """Each experiment's choices, defaults and tutorial case: what the lab's controls offer."""
    return effect_options()


FROM_MODEL = (404, 409, 413, 503)  # an input may be a model's layer output: as a run's errors


def _post(path: str, result: type, operation_id: str, statuses=FROM_MODEL) -> Callable:
    """``POST /api/effects<path>`` answering ``result`` (fields that do not apply left out)."""
    return router.post(
        path,
        response_model=result,
        response_model_exclude_none=True,
        responses=errors(*statuses),
        operation_id=operation_id,
    )


async def _run(
    state: AppState, ws: Workspace, model_id: str | None, job: Job, encoding: str
) -> dict:
    """Run ``job`` on the worker (with the named model loaded), then encode its tensors."""

    def work(built: Built | None) -> dict:
        return to_payloads(job(built), encoding)  # type: ignore[arg-type]

    if model_id is None:
        return await state.worker.call(work, None)
    record = await run_in_threadpool(state.store.get_model, ws.id, model_id)  # a DB read
    if record is None:
        raise SpecError(
            "model_not_found",
            f"This workspace has no model '{model_id}'; GET /api/models lists its models.",
        )
    return await state.worker.with_model(record, lambda live: work(live.built))


def _model_id(*sources: Any) -> str | None:
    ids = {s.model_id for s in sources if isinstance(s, ModelSource)}
    if len(ids) > 1:
        raise SpecError("invalid_input", "an experiment reads one model; use the same model_id")
    return ids.pop() if ids else None


def _tensor(state: AppState, source: Any, built: Built | None):
    return resolve(
        source, built=built, limits=state.limits, max_pixels=state.settings.max_image_pixels
    )


@_post("/pooling", PoolingResult, "poolingEffect")
async def pooling_effect(body: PoolingRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """Pool an input; every output cell's window and (max/min) the winning input cell."""

    def job(built: Built | None) -> dict:
        x = _tensor(state, body.source, built)
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
            max_elements=state.limits.max_input_elements,
            max_work=state.limits.max_work,
        )

    return await _run(state, ws, _model_id(body.source), job, body.encoding)


@_post("/normalization", NormalizationResult, "normalizationEffect")
async def normalization_effect(
    body: NormalizationRequest, ws: WorkspaceDep, state: StateDep
) -> dict:
    """A norm layer before and after, train vs eval, running statistics after k steps."""

    def job(built: Built | None) -> dict:
        x = _tensor(state, body.source, built)
        fields = body.model_dump(exclude={"source", "preset", "encoding"})
        return normalization.normalize(x, **fields, max_elements=state.limits.max_input_elements)

    return await _run(state, ws, _model_id(body.source), job, body.encoding)


@_post("/dropout", DropoutResult, "dropoutEffect")
async def dropout_effect(body: DropoutRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """N seeded passes through Dropout(p): masks, zero fractions, 1/(1−p), eval identity."""

    def job(built: Built | None) -> dict:
        x = _tensor(state, body.source, built)
        return drop.dropout(
            x,
            body.p,
            layer=body.layer,
            passes=body.passes,
            mode=body.mode,
            seed=body.seed,
            max_elements=state.limits.max_input_elements,
        )

    return await _run(state, ws, _model_id(body.source), job, body.encoding)


@_post("/activations", ActivationsResult, "activationsEffect", (503,))
async def activations_effect(body: ActivationsRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """f(x) and f′(x) (autograd) of catalog activations over a range."""

    def job(_: Built | None) -> dict:
        curves = [
            act.curve(f.type, f.args, x_min=body.x_min, x_max=body.x_max, points=body.points)
            for f in body.functions
        ]
        return {"curves": curves, "available": act.activation_types()}

    return await _run(state, ws, None, job, body.encoding)


@_post("/activations/softmax", SoftmaxResult, "softmaxEffect", (503,))
async def softmax_effect(body: SoftmaxRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """softmax and log-softmax of a vector of scores at a temperature."""

    def job(_: Built | None) -> dict:
        return act.softmax(body.scores, body.temperature)

    return await _run(state, ws, None, job, body.encoding)


@_post("/activations/linear-stack", LinearStackResult, "linearStackEffect", (503,))
async def linear_stack_effect(body: LinearStackRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """Linear layers composed into one matrix; with an activation between, no matrix fits."""

    def job(_: Built | None) -> dict:
        return act.linear_stack(
            body.sizes,
            bias=body.bias,
            seed=body.seed,
            batch=body.batch,
            samples=body.samples,
            activation=body.activation,
            activation_args=body.activation_args,
        )

    return await _run(state, ws, None, job, body.encoding)


@_post("/losses", LossResult, "lossEffect")
async def losses_effect(body: LossRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """A loss: value, reductions, per-element values, gradient, and a curve."""

    def job(built: Built | None) -> dict:
        x = _tensor(state, body.input, built)  # both filled by LossRequest from its example
        target = _tensor(state, body.target, None)
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
            max_elements=state.limits.max_input_elements,
        )

    return await _run(state, ws, _model_id(body.input), job, body.encoding)


@_post("/linear", LinearResult, "linearEffect")
async def linear_effect(body: LinearRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """y = x·Wᵀ + b worked out term by term for a seeded Linear or a model's Linear layer."""
    model_id = body.model_id
    if body.x is not None:
        source_id = _model_id(body.x)
        if model_id is not None and source_id not in (None, model_id):
            raise SpecError("invalid_input", "x must come from the same model as the layer")
        model_id = model_id or source_id

    def job(built: Built | None) -> dict:
        if body.layer is not None and built is not None:
            layer = lin.linear_of(built.model, body.layer)
            where = {"source": "model", "model_id": body.model_id, "layer": body.layer}
        else:
            layer = lin.seeded_linear(
                body.in_features, body.out_features, bias=body.bias, seed=body.seed
            )
            where = {"source": "seeded", "model_id": None, "layer": None}
        if body.x is None:
            x = _tensor(state, _default_x(layer.in_features), None)
        else:
            x = _tensor(state, body.x, built)
        call = f"nn.Linear({layer.in_features}, {layer.out_features}"
        call += ")" if layer.bias is not None else ", bias=False)"
        result = lin.by_hand(layer.weight, layer.bias, x, outputs=body.outputs)
        return {**where, "torch_call": call, **result}

    return await _run(state, ws, model_id, job, body.encoding)


def _default_x(in_features: int) -> RandomSource:
    return RandomSource(distribution="uniform", shape=[1, in_features], seed=0)
