"""Why did it predict that? Gradients, Captum attribution, interventions, feature visualization.

Every route checks its cost (forward passes, passes × FLOPs, the layers named) on the worker
before the first pass; the work itself runs there (``server.ops.analysis``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from models.errors import SpecError
from server.deps import ModelDep, state_of
from server.ops.messages import Attribute, FeatVis, Gradients, Intervene
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
from server.schemas.runs import RunResult
from server.store import ModelRecord

router = APIRouter(prefix="/api/models", tags=["attributions"], route_class=JsonRoute)


async def _on_model(request: Request, record: ModelRecord, msg: Any) -> dict[str, Any]:
    """``msg`` on the worker: the live model, or a copy at the request's training checkpoint."""
    state = state_of(request)
    checkpoint = msg.request.checkpoint
    if checkpoint is not None:
        training = await run_in_threadpool(
            state.store.trainings.get, record.workspace_id, checkpoint.training
        )
        if training is None or training.model_id != record.id:
            raise SpecError(
                "training_not_found",
                f"Model '{record.id}' has no training '{checkpoint.training}'; GET "
                f"/api/models/{record.id}/trainings lists them.",
            )
    return await state.worker.submit(msg)


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
    at = (record.workspace_id, record.id, record.version)
    result = await _on_model(request, record, Attribute(*at, request=body))
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
    at = (record.workspace_id, record.id, record.version)
    result = await _on_model(request, record, Gradients(*at, request=body))
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
    result = await state.worker.submit(
        Intervene(record.workspace_id, record.id, record.version, request=body)
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
    result = await state.worker.submit(
        FeatVis(record.workspace_id, record.id, record.version, request=body)
    )
    return RunJSONResponse(result)
