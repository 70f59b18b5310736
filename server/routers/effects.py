"""The effects lab: pooling, normalization, dropout, activations, losses, Linear by hand.

Every route is a POST under ``/api/effects`` and needs the workspace token
(``Authorization: Bearer <token>``), like every route that spends the worker's time: the
token ties the work to a workspace (and, in a classroom, to the access code that made it),
and the ``model`` source reads that workspace's models. The computations live in
:mod:`models.effects` and run on the worker (CPU tensors, float32; ``server.ops.effects``),
never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from models.effects.source import ModelSource
from models.errors import SpecError
from server.deps import StateDep, WorkspaceDep
from server.ops.messages import Effect
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


async def _run(state: AppState, ws: Workspace, model_id: str | None, body: Any) -> dict:
    """Run the experiment ``body`` asks for on the worker (with the named model loaded)."""
    if model_id is None:
        return await state.worker.submit(Effect(ws.id, None, body))
    record = await run_in_threadpool(state.store.get_model, ws.id, model_id)  # a DB read
    if record is None:
        raise SpecError(
            "model_not_found",
            f"This workspace has no model '{model_id}'; GET /api/models lists its models.",
        )
    return await state.worker.submit(Effect(ws.id, model_id, body, record.version))


def _model_id(*sources: Any) -> str | None:
    ids = {s.model_id for s in sources if isinstance(s, ModelSource)}
    if len(ids) > 1:
        raise SpecError("invalid_input", "an experiment reads one model; use the same model_id")
    return ids.pop() if ids else None


@_post("/pooling", PoolingResult, "poolingEffect")
async def pooling_effect(body: PoolingRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """Pool an input; every output cell's window and (max/min) the winning input cell."""

    return await _run(state, ws, _model_id(body.source), body)


@_post("/normalization", NormalizationResult, "normalizationEffect")
async def normalization_effect(
    body: NormalizationRequest, ws: WorkspaceDep, state: StateDep
) -> dict:
    """A norm layer before and after, train vs eval, running statistics after k steps."""

    return await _run(state, ws, _model_id(body.source), body)


@_post("/dropout", DropoutResult, "dropoutEffect")
async def dropout_effect(body: DropoutRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """N seeded passes through Dropout(p): masks, zero fractions, 1/(1−p), eval identity."""

    return await _run(state, ws, _model_id(body.source), body)


@_post("/activations", ActivationsResult, "activationsEffect", (503,))
async def activations_effect(body: ActivationsRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """f(x) and f′(x) (autograd) of catalog activations over a range."""

    return await _run(state, ws, None, body)


@_post("/activations/softmax", SoftmaxResult, "softmaxEffect", (503,))
async def softmax_effect(body: SoftmaxRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """softmax and log-softmax of a vector of scores at a temperature."""

    return await _run(state, ws, None, body)


@_post("/activations/linear-stack", LinearStackResult, "linearStackEffect", (503,))
async def linear_stack_effect(body: LinearStackRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """Linear layers composed into one matrix; with an activation between, no matrix fits."""

    return await _run(state, ws, None, body)


@_post("/losses", LossResult, "lossEffect")
async def losses_effect(body: LossRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """A loss: value, reductions, per-element values, gradient, and a curve."""

    return await _run(state, ws, _model_id(body.input), body)


@_post("/linear", LinearResult, "linearEffect")
async def linear_effect(body: LinearRequest, ws: WorkspaceDep, state: StateDep) -> dict:
    """y = x·Wᵀ + b worked out term by term for a seeded Linear or a model's Linear layer."""
    model_id = body.model_id
    if body.x is not None:
        source_id = _model_id(body.x)
        if model_id is not None and source_id not in (None, model_id):
            raise SpecError("invalid_input", "x must come from the same model as the layer")
        model_id = model_id or source_id

    return await _run(state, ws, model_id, body)
