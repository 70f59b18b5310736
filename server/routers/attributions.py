"""Why did it predict that? Gradients, Captum attribution, interventions, feature visualization.

Every route checks its cost (forward passes, passes × FLOPs, the layers named) on the worker
before the first pass; the work itself runs there (``state.worker.with_model``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from models.build import Built
from models.errors import SpecError
from server import attribution_jobs as aj
from server.deps import ModelDep, state_of
from server.routers.runs import RunJSONResponse
from server.routing import JsonRoute
from server.schemas.attributions import (
    AttributeRequest,
    AttributeResult,
    FeatVisRequest,
    FeatVisResult,
    GradientsRequest,
    GradientsResult,
    InterveneRequest,
)
from server.schemas.common import errors
from server.schemas.runs import CheckpointRef, RunResult
from server.store import ModelRecord
from server.training_jobs import checkpoint_model
from server.worker import Live

router = APIRouter(prefix="/api/models", tags=["attributions"], route_class=JsonRoute)


async def _on_model(
    request: Request,
    record: ModelRecord,
    checkpoint: CheckpointRef | None,
    fn: Callable[[Built], dict[str, Any]],
) -> dict[str, Any]:
    """``fn(built)`` on the worker: the live model, or a copy at a training's checkpoint."""
    state = state_of(request)
    if checkpoint is None:
        return await state.worker.with_model(record, lambda live: fn(live.built))
    training = await run_in_threadpool(
        state.store.trainings.get, record.workspace_id, checkpoint.training
    )
    if training is None or training.model_id != record.id:
        raise SpecError(
            "training_not_found",
            f"Model '{record.id}' has no training '{checkpoint.training}'; GET "
            f"/api/models/{record.id}/trainings lists them.",
        )
    ctx = state.trainings.ctx

    def job(live: Live) -> dict[str, Any]:
        out = fn(checkpoint_model(ctx, live, checkpoint.training, checkpoint.step))
        out["checkpoint"] = checkpoint.model_dump()
        return out

    return await state.worker.with_model(record, job)


@router.post(
    "/{model_id}/attribute",
    response_model=AttributeResult,
    response_model_exclude_none=True,
    responses=errors(404, 409, 413, 503),
    operation_id="attributeModel",
)
async def attribute(body: AttributeRequest, record: ModelDep, request: Request) -> RunJSONResponse:
    """Attribute a class to the input: saliency, integrated_gradients, smoothgrad, gradcam or
    occlusion, through Captum."""
    state = state_of(request)
    result = await _on_model(
        request,
        record,
        body.checkpoint,
        lambda built: aj.attribute_job(built, body, state.settings, state.limits),
    )
    return RunJSONResponse(result)


@router.post(
    "/{model_id}/gradients",
    response_model=GradientsResult,
    response_model_exclude_none=True,
    responses=errors(404, 409, 413, 503),
    operation_id="getGradients",
)
async def gradients(body: GradientsRequest, record: ModelDep, request: Request) -> RunJSONResponse:
    """Gradients of a class score (or a loss) w.r.t. the inputs, activations and parameters."""
    state = state_of(request)
    result = await _on_model(
        request,
        record,
        body.checkpoint,
        lambda built: aj.gradients_job(built, body, state.settings, state.limits),
    )
    return RunJSONResponse(result)


@router.post(
    "/{model_id}/intervene",
    response_model=RunResult,
    response_model_exclude_none=True,
    responses=errors(404, 409, 413, 503),
    operation_id="interveneModel",
)
async def intervene(body: InterveneRequest, record: ModelDep, request: Request) -> RunJSONResponse:
    """A run with interventions (zero, mean, scale, add, replace, patch) at named layers."""
    state = state_of(request)
    if body.checkpoint is not None:
        raise SpecError(
            "unsupported", "interventions run on the current weights; leave out checkpoint"
        )
    if body.mode == "train":
        raise SpecError("unsupported", "interventions run in eval mode; leave out mode")
    result = await state.worker.with_model(
        record,
        lambda live: aj.intervene_job(live, body, state.settings, state.limits, state.worker),
    )
    return RunJSONResponse(result)


@router.post(
    "/{model_id}/featvis",
    response_model=FeatVisResult,
    response_model_exclude_none=True,
    responses=errors(404, 409, 413, 503),
    operation_id="visualizeFeature",
)
async def featvis(body: FeatVisRequest, record: ModelDep, request: Request) -> RunJSONResponse:
    """Optimize an input from seeded noise to excite a channel (or a class)."""
    state = state_of(request)
    result = await state.worker.with_model(
        record, lambda live: aj.featvis_job(live.built, body, state.settings)
    )
    return RunJSONResponse(result)
