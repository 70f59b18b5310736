"""Models of a workspace: create from a spec or preset, read, replace, delete, summarize."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Response

from models.errors import LimitError
from models.presets import get_preset
from server.deps import ModelDep, StateDep, WorkspaceDep
from server.ops.messages import Code, Create, Read, Summary, Update
from server.routing import JsonRoute
from server.schemas.common import errors
from server.schemas.models import (
    CodeOut,
    ModelCreate,
    ModelList,
    ModelPublic,
    ModelUpdate,
    SummaryOut,
)

router = APIRouter(prefix="/api/models", tags=["models"], route_class=JsonRoute)


def _fresh_seed() -> int:
    return secrets.randbelow(2**31)


@router.post(
    "",
    status_code=201,
    response_model=ModelPublic,
    responses=errors(404, 409, 413, 503),
    operation_id="createModel",
)
async def create_model(body: ModelCreate, ws: WorkspaceDep, state: StateDep) -> dict:
    """Build a model from a spec or a preset; with a seed its weights are reproducible."""
    limit = state.settings.max_models_per_workspace
    if state.store.count_models(ws.id) >= limit:
        raise LimitError(
            f"This workspace already holds {limit} models, its limit. Delete one first.",
            detail={"limit": limit, "limit_key": "max_models_per_workspace"},
        )
    preset = get_preset(body.preset) if body.preset else None
    spec = preset.spec if preset else body.spec
    seed = body.seed if body.seed is not None else preset.seed if preset else _fresh_seed()
    name = preset.name if preset else None
    return await state.worker.submit(Create(ws.id, state.store.new_model_id(), spec, seed, name))


@router.get("", response_model=ModelList, operation_id="listModels")
def list_models(ws: WorkspaceDep, state: StateDep) -> dict:
    """The workspace's models, oldest first."""
    models = [
        {
            "id": r.id,
            "name": r.name,
            "version": r.version,
            "layers": len(r.spec["layers"]),
            "total_params": r.params,
            "updated": r.updated,
        }
        for r in state.store.list_models(ws.id)
    ]
    return {"models": models, "limit": state.settings.max_models_per_workspace}


@router.get(
    "/{model_id}",
    response_model=ModelPublic,
    responses=errors(404, 409, 503),
    operation_id="getModel",
)
async def read_model(record: ModelDep, state: StateDep) -> dict:
    """One model: its resolved spec, seed, version and per-layer inference."""
    return await state.worker.submit(Read(record.workspace_id, record.id, record.version))


@router.put(
    "/{model_id}",
    response_model=ModelPublic,
    responses=errors(404, 409, 413, 503),
    operation_id="replaceModel",
)
async def replace_model(body: ModelUpdate, record: ModelDep, state: StateDep) -> dict:
    """A new spec: layers with the same name, type and args keep their weights."""
    state.trainings.check_idle(record.id, "a new spec")
    return await state.worker.submit(
        Update(record.workspace_id, record.id, record.version, spec=body.spec)
    )


@router.delete("/{model_id}", status_code=204, responses=errors(404), operation_id="deleteModel")
def delete_model(record: ModelDep, ws: WorkspaceDep, state: StateDep) -> Response:
    """Delete a model and drop it from memory."""
    state.store.delete_model(ws.id, record.id)
    state.worker.forget(record.id)
    return Response(status_code=204)


@router.get(
    "/{model_id}/summary",
    response_model=SummaryOut,
    responses=errors(404, 409, 503),
    operation_id="getModelSummary",
)
async def model_summary(record: ModelDep, state: StateDep) -> dict:
    """The module tree exactly as print(model) shows it, and one row per layer."""
    return await state.worker.submit(Summary(record.workspace_id, record.id, record.version))


@router.get(
    "/{model_id}/code",
    response_model=CodeOut,
    responses=errors(404, 409, 503),
    operation_id="getModelCode",
)
async def model_code(record: ModelDep, state: StateDep) -> dict:
    """The model as a readable, self-contained nn.Module class in Python."""
    code = await state.worker.submit(Code(record.workspace_id, record.id, record.version))
    return {"class_name": record.name, "code": code}
